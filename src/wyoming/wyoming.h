/* wyoming.h - the Wyoming protocol (Home Assistant's voice protocol) as a
 * way in to a service: what main.c starts and stops.
 *
 * DESIGN
 * One listening socket per service (WYOMING_ASR_PORT, WYOMING_TTS_PORT, on
 * HOST) and one thread per service that owns its connections (epoll, never
 * blocking on anything but epoll_wait). A Wyoming request becomes a struct
 * vs_req like an HTTP one and goes through the same admission (guard,
 * the service's slots and queue, the model's slots), the same worker pools,
 * timeouts and metrics (route="wyoming:transcribe" ...): http.h's functions,
 * never a path of its own. Files: event.c (wire format, pure), server.c
 * (sockets, the thread, connections), job.c (a request through admission
 * and the pool), asr.c, tts.c, info.c (the events of each service).
 */
#ifndef VS_WYOMING_H
#define VS_WYOMING_H

struct vs_service;
struct vs_wy_server;

/* Listens on HOST:port for svc and starts the thread; *out is the server.
 * 0, or -errno (the port in use: -EADDRINUSE), logged. */
int vs_wyoming_start(struct vs_service *svc, int port, struct vs_wy_server **out);
/* Shutdown, first step: stops accepting, and ends the requests that wait
 * for a slot or are still receiving audio (503 shutting_down); requests a
 * worker is on end with the pool's own 503. Does not wait. */
void vs_wyoming_quiesce(struct vs_wy_server *s);
/* Closes every connection (a request still there is cancelled), joins the
 * thread, frees s. Before the pools are freed. Accepts NULL. */
void vs_wyoming_stop(struct vs_wy_server *s);

#endif
