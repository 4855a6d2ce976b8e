/* proto.c - frame encoding and decoding; see proto.h for the wire format. */
#include "worker/proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

void vs_frame_clear(struct vs_frame *f)
{
	if (!f)
		return;
	free(f->data);
	if (f->fd >= 0)
		close(f->fd);
	f->data = NULL;
	f->fd = -1;
	f->len = 0;
}

static void hdr_pack(uint8_t *h, uint16_t type, uint16_t flags, uint32_t len)
{
	uint32_t m = htonl(VS_FRAME_MAGIC), l = htonl(len);
	uint16_t t = htons(type), fl = htons(flags);
	memcpy(h, &m, 4);
	memcpy(h + 4, &t, 2);
	memcpy(h + 6, &fl, 2);
	memcpy(h + 8, &l, 4);
}

static int hdr_unpack(const uint8_t *h, struct vs_frame *f)
{
	uint32_t m, l;
	uint16_t t, fl;
	memcpy(&m, h, 4);
	memcpy(&t, h + 4, 2);
	memcpy(&fl, h + 6, 2);
	memcpy(&l, h + 8, 4);
	if (ntohl(m) != VS_FRAME_MAGIC || ntohl(l) > VS_FRAME_MAX)
		return -EPROTO;
	f->type = ntohs(t);
	f->flags = ntohs(fl);
	f->len = ntohl(l);
	return 0;
}

#define MAX_FDS 2 /* a payload memfd and a passed descriptor */

/* Keeps the descriptors of msg's SCM_RIGHTS messages in the free places of
 * fds[MAX_FDS]; closes any beyond. */
static void collect_fds(struct msghdr *msg, int *fds)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd, k = 0;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			while (k < MAX_FDS && fds[k] >= 0)
				k++;
			if (k < MAX_FDS)
				fds[k] = fd;
			else
				close(fd);
		}
	}
}

/* Sends header + inline bytes; fds (n_fds <= MAX_FDS) travel with the first
 * byte. Loops over partial writes; on a non-blocking socket an EAGAIN is
 * returned as is. */
static int send_frame(int sock, const uint8_t *hdr, const void *data, size_t len, const int *fds,
                      int n_fds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	} ctl;
	struct iovec iov[2];
	struct msghdr msg = {0};
	size_t total = VS_FRAME_HDR + len, sent = 0;

	iov[0] = (struct iovec){.iov_base = (void *)hdr, .iov_len = VS_FRAME_HDR};
	iov[1] = (struct iovec){.iov_base = (void *)data, .iov_len = len};
	msg.msg_iov = iov;
	msg.msg_iovlen = len ? 2 : 1;
	if (n_fds > 0) {
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n_fds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)n_fds);
	}
	while (sent < total) {
		ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		sent += (size_t)n;
		/* the descriptors travel with the first byte only */
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
		while (msg.msg_iovlen > 0 && (size_t)n >= msg.msg_iov[0].iov_len) {
			n -= (ssize_t)msg.msg_iov[0].iov_len;
			msg.msg_iov++;
			msg.msg_iovlen--;
		}
		if (msg.msg_iovlen > 0) {
			msg.msg_iov[0].iov_base = (uint8_t *)msg.msg_iov[0].iov_base + n;
			msg.msg_iov[0].iov_len -= (size_t)n;
		}
	}
	return 0;
}

int vs_frame_send(int sock, uint16_t type, const void *data, uint32_t len, int pass_fd)
{
	uint8_t hdr[VS_FRAME_HDR];

	if (len > VS_FRAME_MAX)
		return -EMSGSIZE;
	hdr_pack(hdr, type, 0, len);
	return send_frame(sock, hdr, data, len, &pass_fd, pass_fd >= 0 ? 1 : 0);
}

int vs_frame_send_json(int sock, uint16_t type, const json_t *j, int pass_fd)
{
	char *s = json_dumps(j, JSON_COMPACT);
	if (!s)
		return -ENOMEM;
	int r = vs_frame_send(sock, type, s, (uint32_t)strlen(s), pass_fd);
	free(s);
	return r;
}

/* A sealed memfd holding data: the receiver can trust its size. */
static int payload_memfd(const void *data, size_t len)
{
	int fd = memfd_create("vs-frame", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	size_t done = 0;

	if (fd < 0)
		return -errno;
	while (done < len) {
		ssize_t n = write(fd, (const uint8_t *)data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? -errno : -EIO;
			close(fd);
			return e;
		}
		done += (size_t)n;
	}
	fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
	return fd;
}

int vs_frame_post(int sock, uint16_t type, const void *data, uint32_t len, int pass_fd)
{
	uint8_t hdr[VS_FRAME_HDR];
	int fds[MAX_FDS], r;

	if (len <= VS_FRAME_INLINE_MAX)
		return vs_frame_send(sock, type, data, len, pass_fd);
	if (len > VS_FRAME_MAX)
		return -EMSGSIZE;
	fds[0] = payload_memfd(data, len);
	if (fds[0] < 0)
		return fds[0];
	fds[1] = pass_fd;
	hdr_pack(hdr, type, VS_FRAME_F_PAYLOAD_FD, len);
	r = send_frame(sock, hdr, NULL, 0, fds, pass_fd >= 0 ? 2 : 1);
	close(fds[0]); /* the worker holds its own reference now */
	return r;
}

int vs_frame_post_json(int sock, uint16_t type, const json_t *j, int pass_fd)
{
	char *s = json_dumps(j, JSON_COMPACT);
	if (!s)
		return -ENOMEM;
	size_t len = strlen(s);
	int r = len > VS_FRAME_MAX ? -EMSGSIZE
	                           : vs_frame_post(sock, type, s, (uint32_t)len, pass_fd);
	free(s);
	return r;
}

/* Reads exactly len bytes (blocking); collects up to MAX_FDS SCM_RIGHTS
 * descriptors into fds (-1 where none), closing any beyond. */
static int read_full(int sock, uint8_t *buf, size_t len, int *fds)
{
	size_t got = 0;
	while (got < len) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
		} ctl;
		struct iovec iov = {.iov_base = buf + got, .iov_len = len - got};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		if (fds) {
			msg.msg_control = ctl.buf;
			msg.msg_controllen = sizeof(ctl.buf);
		}
		ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return got == 0 ? -EPIPE : -EPROTO;
		if (fds)
			collect_fds(&msg, fds);
		got += (size_t)n;
	}
	return 0;
}

/* Reads a VS_FRAME_F_PAYLOAD_FD payload of f->len bytes from fd. */
static int read_payload_fd(int fd, struct vs_frame *f)
{
	struct stat sb;
	size_t got = 0;

	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != f->len)
		return -EPROTO;
	while (got < f->len) {
		ssize_t n = pread(fd, f->data + got, f->len - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EPROTO;
		got += (size_t)n;
	}
	return 0;
}

int vs_frame_recv(int sock, struct vs_frame *f)
{
	uint8_t hdr[VS_FRAME_HDR];
	int fds[MAX_FDS] = {-1, -1};
	int r;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	r = read_full(sock, hdr, sizeof(hdr), fds);
	if (r < 0)
		goto fail;
	r = hdr_unpack(hdr, f);
	if (r < 0)
		goto fail;
	f->data = malloc((size_t)f->len + 1);
	if (!f->data) {
		r = -ENOMEM;
		goto fail;
	}
	if (f->flags & VS_FRAME_F_PAYLOAD_FD) {
		/* the payload is the first descriptor; a passed one follows it */
		r = fds[0] >= 0 ? read_payload_fd(fds[0], f) : -EPROTO;
		if (fds[0] >= 0)
			close(fds[0]);
		fds[0] = fds[1];
		fds[1] = -1;
	} else {
		r = read_full(sock, f->data, f->len, NULL);
		if (r == -EPIPE)
			r = -EPROTO;
	}
	f->fd = fds[0];
	fds[0] = -1;
	if (r < 0)
		goto fail;
	f->data[f->len] = 0;
	return 0;
fail:
	for (int i = 0; i < MAX_FDS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	vs_frame_clear(f);
	return r;
}

void vs_frame_reader_init(struct vs_frame_reader *r)
{
	memset(r, 0, sizeof(*r));
	r->cur.fd = -1;
}

void vs_frame_reader_reset(struct vs_frame_reader *r)
{
	vs_frame_clear(&r->cur);
	vs_frame_reader_init(r);
}

int vs_frame_read(struct vs_frame_reader *r, int sock, struct vs_frame *out)
{
	for (;;) {
		uint8_t *dst;
		size_t want;
		if (r->have < VS_FRAME_HDR) {
			dst = r->hdr + r->have;
			want = VS_FRAME_HDR - r->have;
		} else {
			dst = r->cur.data + (r->have - VS_FRAME_HDR);
			want = VS_FRAME_HDR + r->cur.len - r->have;
		}
		if (want > 0) {
			ssize_t n = recv(sock, dst, want, 0);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
			}
			if (n == 0)
				return r->have == 0 ? -EPIPE : -EPROTO;
			r->have += (size_t)n;
		}
		if (r->have == VS_FRAME_HDR && !r->cur.data) {
			int e = hdr_unpack(r->hdr, &r->cur);
			if (e < 0)
				return e;
			/* this reader takes no descriptors, so no payload in one */
			if (r->cur.flags & VS_FRAME_F_PAYLOAD_FD)
				return -EPROTO;
			r->cur.data = malloc((size_t)r->cur.len + 1);
			if (!r->cur.data)
				return -ENOMEM;
		}
		if (r->have >= VS_FRAME_HDR && r->have == VS_FRAME_HDR + r->cur.len) {
			r->cur.data[r->cur.len] = 0;
			*out = r->cur;
			vs_frame_reader_init(r);
			return 1;
		}
	}
}

json_t *vs_frame_json(const struct vs_frame *f)
{
	if (!f->data || f->len == 0)
		return NULL;
	json_t *j = json_loadb((const char *)f->data, f->len, 0, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}
