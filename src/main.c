/* main.c - the `voicestack` command (the front): serve, config, and
 * transcribe/speak, which exec the worker binary `voicestack-worker`.
 *
 * DESIGN
 * `serve` loads the settings once (config/), starts one HTTP daemon per
 * service (http/) with its slots (admit/) and worker pool (worker/), then
 * waits for SIGINT/SIGTERM (SIGHUP re-reads API_KEYS_FILE and goes on
 * waiting), then shuts down in order (shutdown_services())
 * and returns from main, so LeakSanitizer can check a sanitizer build.
 * This binary links no engine and no FFmpeg (docs/ARCHITECTURE.md): the
 * engines run in `voicestack-worker`, found beside this executable, which
 * also runs the one-shot `transcribe` and `speak` through the same pipeline
 * as the workers (and is the in-process baseline of the benchmarks).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admit/adapt.h"
#include "common/log.h"
#include "config/config.h"
#include "engine/engine.h"
#include "engine_settings.h"
#include "usage.h"
#include "http/http.h"
#include "http/sdnotify.h"
#include "api/openai.h"
#include "obs/metrics.h"
#include "worker/spawn.h"
#include "wyoming/wyoming.h"

static int load_config(struct vs_config *c, int *argc, char **argv)
{
	char err[512];
	int rest = 0;
	if (vs_config_load(c, vs_engine_settings_checks(), *argc, argv, &rest, err, sizeof(err)) <
	    0) {
		fprintf(stderr, "voicestack: invalid setting: %s\n", err);
		return -EINVAL;
	}
	*argc = rest;
	int l = vs_log_parse_level(c->log_level);
	if (l >= 0)
		vs_log_set_level((enum vs_log_level)l);
	return 0;
}

/* ---- serve ---- */

static void print_warning(const char *msg, void *opaque)
{
	(void)opaque;
	fprintf(stderr, "voicestack: warning: %s\n", msg);
}

static void log_warning(const char *msg, void *opaque)
{
	(void)opaque;
	vs_warn("event=setting_ignored msg=\"%s\"", msg);
}

/* worker arguments: the service's (worker_args) and a model's options */
#define VS_WORKER_ARGS_MAX (20 + 2 * VS_MODEL_OPTIONS_MAX)

/* Worker arguments of one service: the common ones, then what its engine's
 * load() gets (ec, already checked against the engine's capabilities).
 * Returns the count; args[count] = NULL. */
static int worker_args(const struct vs_config *c, const struct vs_engine_config *ec,
                       const char **args)
{
	static char audio[32], nice_s[8]; /* the same for both services */
	int k = 0;

	snprintf(audio, sizeof(audio), "%g", c->asr_max_audio_seconds);
	snprintf(nice_s, sizeof(nice_s), "%d", c->worker_nice);
	args[k++] = "--nice", args[k++] = nice_s;
	args[k++] = "--log-level", args[k++] = c->log_level;
	args[k++] = "--vad", args[k++] = ec->vad ? "1" : "0";
	args[k++] = "--max-audio-seconds", args[k++] = audio;
	if (ec->model)
		args[k++] = "--model", args[k++] = ec->model;
	if (ec->device)
		args[k++] = "--device", args[k++] = ec->device;
	if (ec->compute_type)
		args[k++] = "--compute-type", args[k++] = ec->compute_type;
	args[k] = NULL;
	return k;
}

/* *_RESERVED_SLOTS and LOW_LANE_MAX_SKIPS on slots s of svc: its own
 * (model NULL) or a model's. One slot always serves every lane, so the
 * reservation is cut to the slots - 1 where there are fewer (auto slots, a
 * model's `slots=`), with one warning. */
static void set_lanes(struct vs_service *svc, struct vs_slots *s, const char *model)
{
	const struct vs_config *c = svc->cfg;
	int want = svc->kind == VS_ENGINE_ASR ? c->asr_reserved_slots : c->tts_reserved_slots;
	int kept = vs_slots_set_lanes(s, want, c->low_lane_max_skips);
	if (kept < want)
		vs_warn("event=reserved_slots_reduced service=%s model=%s slots=%d reserved=%d "
		        "wanted=%d msg=\"Too few slots to reserve %s_RESERVED_SLOTS for high "
		        "priority; a high request may wait for one\"",
		        svc->name, model ? model : "-", s->max, kept, want,
		        svc->kind == VS_ENGINE_ASR ? "ASR" : "TTS");
}

/* One model of svc: its slots (within the service's) and its worker pool,
 * whose workers get the service's arguments plus the model's options. */
static int setup_model(struct vs_service *svc, const struct vs_model *spec, const char *exe,
                       const char **wargs, int n_common, int slots, int max_queue,
                       double queue_timeout_s)
{
	struct vs_model_rt *m = &svc->models[svc->n_models];
	const struct vs_config *c = svc->cfg;
	int k = n_common;

	/* wargs[0..n_common) are the service's; the model's options follow */
	for (int i = 0; i < spec->n_options && k + 2 < VS_WORKER_ARGS_MAX; i++)
		wargs[k++] = "--option", wargs[k++] = spec->options[i];
	wargs[k] = NULL;
	m->spec = spec;
	m->idle_timeout_minutes =
	        spec->idle_minutes >= 0 ? spec->idle_minutes : svc->idle_timeout_minutes;
	pthread_mutex_init(&m->voices_mu, NULL);
	vs_slots_init(&m->slots, spec->slots ? spec->slots : slots, max_queue, queue_timeout_s);
	/* the service's reservation holds at the model's slots too */
	set_lanes(svc, &m->slots, spec->id);
	struct vs_pool_config pc = {
	        .service = svc->name,
	        .model = spec->id,
	        .engine = spec->engine,
	        .slots = m->slots.max,
	        .idle_timeout_s = m->idle_timeout_minutes * 60.0,
	        .idle_check_interval_s = c->idle_check_interval_seconds,
	        .request_timeout_s = c->request_timeout_seconds,
	        .worker_args = wargs,
	};
	m->pool = vs_pool_new(&pc, exe);
	if (!m->pool)
		return -ENOMEM;
	svc->n_models++;
	return 0;
}

/* *_MAX_CONCURRENT_REQUESTS=auto: how many of the service's largest model
 * fit in the memory free under the threshold, capped by the cores we may
 * run on (adapt.c); the derivation is kept for /health/detailed. */
static int auto_slots(struct vs_service *svc, const struct vs_models *ms, struct vs_guard *g)
{
	struct vs_mem_reading m = {0};
	const struct vs_model *big = NULL;
	cpu_set_t cpus;
	int cores = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 1;

	for (int i = 0; i < ms->n; i++)
		if (ms->m[i].kind == svc->kind &&
		    (!big || ms->m[i].engine->typical_rss_mb > big->engine->typical_rss_mb))
			big = &ms->m[i];
	if (vs_guard_snapshot(g, &m) < 0)
		vs_warn("event=auto_slots msg=\"memory unreadable: slots by cores only\"");
	int n = vs_auto_slots(&svc->auto_slots, m.mem_total_mb, m.mem_available_mb,
	                      svc->cfg->memory_threshold_percent, big ? big->id : "",
	                      big ? big->engine->typical_rss_mb : 0, false, cores, VS_SLOTS_MAX);
	svc->slots_auto = true;
	vs_info("event=auto_slots service=%s slots=%d cores=%d fit=%d room_mb=%.0f model=%s "
	        "model_mb=%.0f",
	        svc->name, n, cores, svc->auto_slots.fit, svc->auto_slots.room_mb,
	        svc->auto_slots.model, svc->auto_slots.model_mb);
	return n;
}

static int setup_service(struct vs_service *svc, const struct vs_config *c, struct vs_guard *g,
                         struct vs_models *ms, enum vs_engine_kind kind, const char *exe,
                         const char *(*wargs)[VS_WORKER_ARGS_MAX + 1])
{
	struct vs_engine_config ec;
	bool asr = kind == VS_ENGINE_ASR;
	memset(svc, 0, sizeof(*svc));
	svc->name = asr ? "asr" : "tts";
	svc->kind = kind;
	svc->cfg = c;
	/* warnings about settings the engine cannot use, once per service */
	svc->engine = vs_engine_settings(c, kind, &ec, log_warning, NULL);
	svc->guard = g;
	svc->port = asr ? c->asr_port : c->tts_port;
	svc->idle_timeout_minutes = asr ? c->asr_idle_timeout_minutes : c->tts_idle_timeout_minutes;
	svc->degrade = asr ? c->asr_degrade_under_load : c->tts_degrade_under_load;
	svc->started_ms = vs_now_ms();
	svc->max_body_bytes = asr ? (uint64_t)c->max_upload_size_mb * 1024 * 1024
	                          : (uint64_t)c->max_json_body_kb * 1024;
	int slots = asr ? c->asr_max_concurrent_requests : c->tts_max_concurrent_requests;
	if (slots == 0) /* auto */
		slots = auto_slots(svc, ms, g);
	int max_queue = asr ? c->asr_max_queue : c->tts_max_queue;
	double queue_timeout_s = asr ? c->asr_queue_timeout_seconds : c->tts_queue_timeout_seconds;
	vs_slots_init(&svc->slots, slots, max_queue, queue_timeout_s);
	svc->pressure.shrink_pct = c->memory_pressure_shrink_percent;
	svc->pressure.calm_s = c->memory_pressure_calm_seconds;
	set_lanes(svc, &svc->slots, NULL);
	for (int i = 0; i < ms->n; i++) {
		if (ms->m[i].kind != kind)
			continue;
		if (ms->m[i].slots > slots) {
			/* only with auto: the file's count is checked against a number */
			vs_warn("event=setting_ignored msg=\"model %s: slots=%d is more than the "
			        "%d the "
			        "service has (auto); %d\"",
			        ms->m[i].id, ms->m[i].slots, slots, slots);
			ms->m[i].slots = slots;
		}
		int n = worker_args(c, &ec, wargs[svc->n_models]);
		if (setup_model(svc, &ms->m[i], exe, wargs[svc->n_models], n, slots, max_queue,
		                queue_timeout_s) < 0)
			return -ENOMEM;
	}
	/* the default model's engine answers for the service (translation 400,
	 * logs); ASR_DEVICE and friends were checked against ASR_ENGINE's */
	svc->engine = svc->models[0].spec->engine;
	return vs_service_models_index(svc);
}

/* MEMORY_PRESSURE_SHRINK_PERCENT: halve the service's slots while memory
 * stalls, give them back once calm (adapt.c); each change logged once */
static void adapt_to_pressure(struct vs_service *svc)
{
	struct vs_mem_reading m;
	if (svc->pressure.shrink_pct <= 0 || vs_guard_snapshot(svc->guard, &m) < 0)
		return;
	int step = vs_pressure_step(&svc->pressure, m.pressure_known, m.pressure_some_avg10,
	                            vs_now_ms());
	if (step == VS_PRESSURE_KEEP)
		return;
	int limit = step == VS_PRESSURE_SHRINK ? vs_pressure_limit(svc->slots.max) : svc->slots.max;
	vs_slots_set_limit(&svc->slots, limit);
	vs_warn("event=%s service=%s limit=%d max=%d pressure_avg10=%.1f bound=%g "
	        "msg=\"%s\"",
	        step == VS_PRESSURE_SHRINK ? "slots_shrunk" : "slots_restored", svc->name, limit,
	        svc->slots.max, m.pressure_some_avg10, svc->pressure.shrink_pct,
	        step == VS_PRESSURE_SHRINK ? "Memory pressure: fewer slots until it calms"
	                                   : "Memory pressure calmed: all slots back");
}

static void expire_queues(void *opaque)
{
	struct vs_service *svcs = opaque;
	for (int i = 0; i < 2; i++) {
		if (!svcs[i].daemon)
			continue;
		adapt_to_pressure(&svcs[i]);
		vs_slots_expire(&svcs[i].slots, vs_now_ms());
		for (int k = 0; k < svcs[i].n_models; k++)
			vs_slots_expire(&svcs[i].models[k].slots, vs_now_ms());
	}
}

/* True once no request holds a slot or waits in a queue of any service. */
static bool services_idle(struct vs_service *const *active, int n)
{
	for (int i = 0; i < n; i++) {
		struct vs_slots_snapshot ss;
		vs_slots_snapshot(&active[i]->slots, &ss);
		if (ss.active > 0 || ss.depth > 0)
			return false;
	}
	return true;
}

/* Shutdown, bounded by grace_s (+1 s for the last replies to leave):
 *  1. stop accepting (quiesce; the listen fds are closed after step 4, as
 *     MHD requires while its threads run) and end the realtime sessions;
 *  2. stop the pools: requests in flight get 503 shutting_down and their
 *     workers are killed, idle workers exit on EOF, a stuck one is SIGKILLed
 *     at the deadline; a request that arrives on a kept-alive connection now
 *     gets a 503 from the failed submit; then the spawner, bounded alike;
 *  3. expire the queues (a queued request gets the queue's 429 + Retry-After,
 *     which sends a client to retry, here the restarted server), and wait
 *     until no request holds a slot: then no connection is suspended any
 *     more, which MHD_stop_daemon needs;
 *  4. stop the daemons (closes what is left, e.g. an upload mid-body);
 *  5. stop the reactor and free the pools. */
static void shutdown_services(struct vs_service *const *active, int n, double grace_s,
                              struct vs_wy_server *const *wy)
{
	uint64_t deadline = vs_now_ms() + (uint64_t)(grace_s * 1000);
	MHD_socket lfd[2] = {MHD_INVALID_SOCKET, MHD_INVALID_SOCKET};

	for (int i = 0; i < n; i++) {
		lfd[i] = MHD_quiesce_daemon(active[i]->daemon);
		vs_wyoming_quiesce(wy[i]);
	}
	/* realtime sessions end first (error event, close 1001): they hold no
	 * slot afterwards and their sockets are back with libmicrohttpd */
	for (int i = 0; i < n; i++)
		vs_rt_stop(active[i]);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < active[i]->n_models; k++) {
			uint64_t now = vs_now_ms();
			vs_pool_stop(active[i]->models[k].pool,
			             now < deadline ? (double)(deadline - now) / 1000.0 : 0);
		}
	uint64_t now = vs_now_ms();
	vs_spawner_stop(now < deadline ? (double)(deadline - now) / 1000.0 : 0);
	for (int i = 0; i < n; i++) {
		vs_slots_expire(&active[i]->slots, UINT64_MAX);
		for (int k = 0; k < active[i]->n_models; k++)
			vs_slots_expire(&active[i]->models[k].slots, UINT64_MAX);
	}
	uint64_t drain_end = deadline > vs_now_ms() + 1000 ? deadline : vs_now_ms() + 1000;
	while (!services_idle(active, n) && vs_now_ms() < drain_end)
		usleep(20000);
	if (!services_idle(active, n))
		vs_warn("event=shutdown_drain_timeout grace_s=%g msg=\"Closing connections with "
		        "requests still in progress\"",
		        grace_s);
	for (int i = 0; i < n; i++) {
		MHD_stop_daemon(active[i]->daemon);
		active[i]->daemon = NULL;
		vs_rt_free(active[i]);
		if (lfd[i] != MHD_INVALID_SOCKET)
			close(lfd[i]);
		/* before the pools go: a Wyoming request left is cancelled there */
		vs_wyoming_stop(wy[i]);
	}
	vs_reactor_stop();
	for (int i = 0; i < n; i++)
		for (int k = 0; k < active[i]->n_models; k++) {
			struct vs_model_rt *m = &active[i]->models[k];
			vs_pool_free(m->pool);
			m->pool = NULL;
			free(m->voices_json);
			m->voices_json = NULL;
			pthread_mutex_destroy(&m->voices_mu);
		}
}

static int cmd_serve(struct vs_config *c, int argc, char **argv)
{
	static struct vs_service svcs[2];
	static struct vs_guard guard;
	static struct vs_auth auth; /* API keys and CORS, shared by both services */
	const char *which = "all";
	char exe[PATH_MAX];
	struct vs_service *active[2];
	int n_active = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--service") == 0 && i + 1 < argc)
			which = argv[++i];
		else if (strncmp(argv[i], "--service=", 10) == 0)
			which = argv[i] + 10;
		else {
			fprintf(stderr, "voicestack serve: unknown option '%s' (see --help)\n",
			        argv[i]);
			return 2;
		}
	}
	if (strcmp(which, "asr") && strcmp(which, "tts") && strcmp(which, "all")) {
		fprintf(stderr, "voicestack serve: --service must be asr, tts or all (got '%s')\n",
		        which);
		return 2;
	}
	int r = vs_worker_exe(exe, sizeof(exe));
	if (r < 0) {
		fprintf(stderr, "voicestack: cannot find the worker binary %s: %s\n", exe,
		        strerror(-r));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	vs_config_warnings(c, log_warning, NULL);
	/* per service and model: the pools keep the pointers */
	static const char *wargs[2][VS_MODELS_MAX][VS_WORKER_ARGS_MAX + 1];
	static struct vs_models models; /* the services keep pointers into it */
	char err[512];
	unsigned need = (strcmp(which, "tts") ? VS_ENGINE_ASR : 0) |
	                (strcmp(which, "asr") ? VS_ENGINE_TTS : 0);
	if (vs_engine_settings_models(c, need, &models, log_warning, NULL, err, sizeof(err)) < 0) {
		vs_error("event=start_failed setting=MODELS_FILE msg=\"%s\"", err);
		fprintf(stderr, "voicestack: model catalogue: %s\n", err);
		return 2;
	}

	if (vs_auth_init(&auth, c) < 0) { /* logged */
		vs_auth_destroy(&auth);
		return 2;
	}
	vs_guard_init(&guard, c->memory_threshold_percent, c->swap_threshold_percent, 250000);
	guard.pressure_refuse_pct = c->memory_pressure_refuse_percent;
	/* test seam, like VS_TEST_ENGINE_SLEEP_MS: the guard reads
	 * $VS_TEST_PROC_ROOT/proc/meminfo (and its cgroup files) instead */
	if (getenv("VS_TEST_PROC_ROOT"))
		vs_guard_set_root(&guard, getenv("VS_TEST_PROC_ROOT"));
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	/* block before any thread starts so only sigwait() below sees them */
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	for (int i = 0; i < 2; i++) {
		enum vs_engine_kind kind = i == 0 ? VS_ENGINE_ASR : VS_ENGINE_TTS;
		if (strcmp(which, "all") && strcmp(which, i == 0 ? "asr" : "tts"))
			continue;
		if (setup_service(&svcs[i], c, &guard, &models, kind, exe, wargs[i]) < 0)
			return 1;
		svcs[i].auth = &auth;
		active[n_active++] = &svcs[i];
	}
	if (n_active == 2) { /* the page on one port calls the other (page.c) */
		active[0]->sibling = active[1];
		active[1]->sibling = active[0];
	}
	vs_http_observe(active, n_active);
	if (vs_reactor_add_tick(expire_queues, svcs) < 0)
		return 1;
	for (int i = 0; i < n_active; i++)
		if (vs_http_start(active[i]) < 0)
			return 1;
	/* Wyoming (Home Assistant): the same services through their own ports */
	struct vs_wy_server *wy[2] = {NULL, NULL};
	for (int i = 0; i < n_active; i++) {
		int port = active[i]->kind == VS_ENGINE_ASR ? c->wyoming_asr_port
		                                            : c->wyoming_tts_port;
		if (port > 0 && vs_wyoming_start(active[i], port, &wy[i]) < 0)
			return 1;
	}
	vs_info("event=ready version=%s env=%s services=%s", VS_VERSION, c->env, which);
	/* every socket listens now: systemd may report the unit active */
	vs_sd_ready(active, n_active);

	int sig = 0;
	while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {
		vs_sd_reloading();
		vs_auth_reload(&auth);
		vs_sd_reloaded();
	}
	vs_info("event=shutdown signal=%d grace_s=%g", sig, c->shutdown_grace_seconds);
	vs_sd_stopping();
	shutdown_services(active, n_active, c->shutdown_grace_seconds, wy);
	vs_guard_destroy(&guard);
	vs_auth_destroy(&auth);
	vs_info("event=shutdown_complete");
	return 0;
}

/* ---- models ---- */

/* The catalogue the settings give, as a MODELS_FILE: what serve would run. */
static int cmd_models(const struct vs_config *c)
{
	static struct vs_models models;
	char err[512];

	if (vs_engine_settings_models(c, VS_ENGINE_ASR | VS_ENGINE_TTS, &models, print_warning,
	                              NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "voicestack: model catalogue: %s\n", err);
		return 2;
	}
	vs_models_print(&models, stdout, c->asr_max_concurrent_requests,
	                c->tts_max_concurrent_requests, c->asr_idle_timeout_minutes,
	                c->tts_idle_timeout_minutes);
	vs_models_free(&models);
	return 0;
}

/* ---- transcribe / speak: the worker binary's pipeline ---- */

/* The one-shot commands run the engines; the front binary links none, so
 * they are the worker binary's (`voicestack-worker transcribe ...`), with
 * the same arguments. exec keeps the exit status, stdin/stdout and signals
 * exactly as if this process ran them. */
static int exec_worker(char **argv)
{
	char exe[PATH_MAX];
	int r = vs_worker_exe(exe, sizeof(exe));
	if (r == 0) {
		argv[0] = exe;
		execv(exe, argv);
		r = -errno;
	}
	fprintf(stderr, "voicestack %s: cannot run the worker binary %s: %s\n", argv[1], exe,
	        strerror(-r));
	return 1;
}

int main(int argc, char **argv)
{
	struct vs_config cfg;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			vs_usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "-V") == 0) {
			printf("voicestack %s\n", VS_VERSION);
			return 0;
		}
	}
	if (argc < 2) {
		vs_usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "transcribe") == 0 || strcmp(cmd, "speak") == 0)
		return exec_worker(argv);
	/* settings parsing sees the arguments after the command name */
	int rest = argc - 1;
	char **args = argv + 1;
	if (strcmp(cmd, "config") == 0 && argc > 2 && strcmp(argv[2], "--markdown") == 0) {
		vs_config_print_markdown(stdout, vs_engine_settings_checks());
		return 0;
	}
	if (strcmp(cmd, "config") == 0 && argc > 2 && strcmp(argv[2], "--man") == 0) {
		vs_man_page(stdout);
		return 0;
	}
	if (load_config(&cfg, &rest, args) < 0)
		return 2;
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(&cfg, rest, args);
	if (strcmp(cmd, "config") == 0) {
		vs_config_print_effective(&cfg, stdout);
		return 0;
	}
	if (strcmp(cmd, "models") == 0)
		return cmd_models(&cfg);
	fprintf(stderr, "voicestack: unknown command '%s' (see --help)\n", cmd);
	return 2;
}
