/* fuzz_decode.c - libFuzzer driver for vs_decode_fd (src/media/media.h).
 *
 * DESIGN
 * The input is an uploaded audio file. It goes into a memfd (a regular,
 * seekable file, like the front's spooled upload) and is decoded as the ASR
 * worker does: mono s16 at 16 kHz, at most 30 s. Checks the documented
 * contract: 0 with a non-empty buffer of at most 30 s, or -EINVAL / -ERANGE
 * (sample rate) / -EFBIG /
 * -ENOMEM with a reason in err and nothing to free; the fd's offset is not
 * moved. Bugs inside FFmpeg itself show up here too (the worker is where
 * they would crash); tell them apart by the stack.
 */
#include "fuzz.h"
#include "media/media.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define OUT_RATE 16000
#define MAX_SECONDS 30.0

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz_decode", MFD_CLOEXEC);
	size_t off = 0;

	if (fd < 0)
		return 0;
	while (off < size) {
		ssize_t w = write(fd, data + off, size - off);
		if (w < 0 && errno == EINTR)
			continue;
		FUZZ_CHECK(w > 0);
		off += (size_t)w;
	}
	/* a non-zero offset proves decode reads from byte 0 and leaves it alone */
	off_t pos = lseek(fd, (off_t)(size / 2), SEEK_SET);

	int16_t *pcm = NULL;
	size_t n = 0;
	char err[256] = "";
	int rc = vs_decode_fd(fd, OUT_RATE, MAX_SECONDS, &pcm, &n, err, sizeof(err));
	if (rc == 0) {
		FUZZ_CHECK(pcm != NULL && n > 0);
		FUZZ_CHECK(n <= (size_t)(OUT_RATE * MAX_SECONDS));
		free(pcm);
	} else {
		FUZZ_CHECK(rc == -EINVAL || rc == -ERANGE || rc == -EFBIG || rc == -ENOMEM);
		FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
	}
	FUZZ_CHECK(lseek(fd, 0, SEEK_CUR) == pos);
	close(fd);
	return 0;
}
