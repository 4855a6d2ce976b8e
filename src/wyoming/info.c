/* info.c - describe -> info: the models and voices this server has.
 *
 * DESIGN
 * Each port describes its own service, as the reference servers do (STT on
 * one port, TTS on the other), so Home Assistant set up with both ports
 * gets one speech-to-text and one text-to-speech entity, not two of each.
 * One program, "voicestack", per service:
 *  - ASR: one AsrModel per model of the catalogue (its id, as /v1/models
 *    lists it), the languages its engine transcribes (the catalog's data);
 *  - TTS: one TtsVoice per voice of each model, named "MODEL:VOICE", with
 *    the voice's language: exactly what GET /v1/audio/voices?model=MODEL
 *    lists. Those lists come from a worker (list_voices); one the front has
 *    not seen yet is asked for here the same way (a VOICES request through
 *    admission, route wyoming:describe), then cached for both protocols.
 *    A model whose list cannot be had now (slots busy, memory) is described
 *    with the voices every engine accepts (the OpenAI names, English), and
 *    the refusal is logged, not sent: describe always answers.
 * supports_synthesize_streaming is true (tts.c), supports_transcript_
 * streaming false (a transcript is whole). Attribution: each engine's
 * project; the programs' version is Voice Stack's, the models' unknown.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "wyoming/wy.h"

static json_t *attribution(const char *name, const char *url)
{
	return json_pack("{s:s, s:s}", "name", name, "url", url ? url : "");
}

/* name, description, attribution, installed, version of an artifact */
static json_t *artifact(const char *name, const char *desc, json_t *attr, const char *version)
{
	json_t *a = json_pack("{s:s, s:s, s:o, s:b}", "name", name, "description", desc,
	                      "attribution", attr, "installed", 1);
	if (a)
		json_object_set_new(a, "version", version ? json_string(version) : json_null());
	return a;
}

static json_t *program(struct vs_service *svc)
{
	char desc[160];
	snprintf(desc, sizeof(desc), "Voice Stack %s: %s, default model %s",
	         svc->kind == VS_ENGINE_ASR ? "speech to text" : "text to speech",
	         svc->kind == VS_ENGINE_ASR ? "the models of /v1/audio/transcriptions"
	                                    : "the models and voices of /v1/audio/speech",
	         svc->models[0].spec->id);
	return artifact("voicestack", desc, attribution("Voice Stack", ""), VS_VERSION);
}

static json_t *string_list(const char *const *list)
{
	json_t *a = json_array();
	for (size_t i = 0; list && list[i]; i++)
		json_array_append_new(a, json_string(list[i]));
	return a;
}

static json_t *asr_info(struct vs_service *svc)
{
	json_t *p = program(svc), *models = json_array();
	for (int i = 0; i < svc->n_models; i++) {
		const struct vs_model *m = svc->models[i].spec;
		char desc[128];
		snprintf(desc, sizeof(desc), "%s (%s)", m->id, m->engine->name);
		json_t *a =
		        artifact(m->id, desc, attribution(m->engine->name, m->engine->url), NULL);
		json_object_set_new(a, "languages", string_list(m->engine->languages));
		json_array_append_new(models, a);
	}
	json_object_set_new(p, "models", models);
	json_object_set_new(p, "supports_transcript_streaming", json_false());
	return p;
}

static void add_voice(json_t *voices, const struct vs_model *m, const char *name, const char *lang,
                      const char *gender)
{
	char full[VS_MODEL_ID_MAX + 300], desc[400];
	snprintf(full, sizeof(full), "%s:%s", m->id, name);
	snprintf(desc, sizeof(desc), "%s (%s%s%s)", name, m->id, gender && *gender ? ", " : "",
	         gender ? gender : "");
	json_t *v = artifact(full, desc, attribution(m->engine->name, m->engine->url), NULL);
	json_t *langs = json_array();
	if (lang && *lang)
		json_array_append_new(langs, json_string(lang));
	json_object_set_new(v, "languages", langs);
	json_array_append_new(voices, v);
}

/* one model's voices: its cached list (GET /v1/audio/voices), or the names
 * every engine accepts */
static void model_voices(json_t *voices, struct vs_model_rt *m)
{
	pthread_mutex_lock(&m->voices_mu);
	json_t *doc = m->voices_json ? json_loads(m->voices_json, 0, NULL) : NULL;
	pthread_mutex_unlock(&m->voices_mu);
	json_t *list = json_object_get(doc, "voices");
	size_t i;
	json_t *v;

	if (json_is_array(list) && json_array_size(list)) {
		json_array_foreach(list, i, v)
		{
			const char *name = wy_str(v, "name");
			if (name)
				add_voice(voices, m->spec, name, wy_str(v, "language"),
				          wy_str(v, "gender"));
		}
	} else {
		for (i = 0; m->spec->engine->voices && m->spec->engine->voices[i]; i++)
			add_voice(voices, m->spec, m->spec->engine->voices[i], "en", NULL);
	}
	json_decref(doc);
}

static json_t *tts_info(struct vs_service *svc)
{
	json_t *p = program(svc), *voices = json_array();
	for (int i = 0; i < svc->n_models; i++)
		model_voices(voices, &svc->models[i]);
	json_object_set_new(p, "voices", voices);
	json_object_set_new(p, "supports_synthesize_streaming", json_true());
	return p;
}

static void send_info(struct wy_conn *c)
{
	struct vs_service *svc = c->srv->svc;
	bool asr = svc->kind == VS_ENGINE_ASR;
	json_t *d = json_pack("{s:[o]}", asr ? "asr" : "tts", asr ? asr_info(svc) : tts_info(svc));
	if (!d) {
		wy_send_error(c, 500, "internal_error", "Out of memory");
		return;
	}
	wy_send(c, "info", d, NULL, 0);
	json_decref(d);
}

void wy_info_describe(struct wy_conn *c)
{
	if (c->srv->svc->kind == VS_ENGINE_ASR) {
		send_info(c);
		return;
	}
	/* in turn with the syntheses asked for before it (their voices may
	 * have to be fetched first) */
	wy_tts_enqueue_describe(c);
}

static bool cached(struct vs_model_rt *m)
{
	pthread_mutex_lock(&m->voices_mu);
	bool yes = m->voices_json != NULL;
	pthread_mutex_unlock(&m->voices_mu);
	return yes;
}

bool wy_info_step(struct wy_conn *c)
{
	struct vs_service *svc = c->srv->svc;

	while (c->describe_next < svc->n_models) {
		int i = c->describe_next;
		struct vs_model_rt *m = &svc->models[i];
		if (c->describe_failed[i] || cached(m)) {
			c->describe_next++;
			continue;
		}
		struct wy_job *j = wy_job_new(c, WJ_VOICES);
		if (!j) {
			c->describe_failed[i] = true;
			continue;
		}
		j->r.asked = m;
		j->r.no_degrade = true; /* the list of this model, not of its fallback */
		snprintf(j->r.model, sizeof(j->r.model), "%s", m->spec->id);
		if (wy_job_admit(j) == 1)
			wy_job_model(j);
		if (c->job)
			return false; /* queued or working: the answer comes back here */
		                      /* refused at once: marked failed, go on */
	}
	send_info(c);
	c->describe_next = 0;
	memset(c->describe_failed, 0, sizeof(c->describe_failed));
	return true;
}

int wy_info_voices_submit(struct wy_job *j)
{
	vs_tts_voices_submit(&j->r); /* GET /v1/audio/voices' own submission */
	return j->r.phase == P_REPLY ? -EIO : 0;
}

void wy_info_voices_answered(struct wy_job *j)
{
	struct vs_req *r = &j->r;
	struct wy_conn *c = j->c;
	int i = (int)(r->asked - c->srv->svc->models);

	if (r->err.status) {
		wy_job_refused(j);
		return;
	}
	vs_tts_voices_render(r); /* caches the list, as the HTTP route does */
	if (!cached(r->asked))
		c->describe_failed[i] = true;
	wy_job_finish(j, r->status ? r->status : 200);
}
