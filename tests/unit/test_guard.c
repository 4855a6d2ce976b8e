/* test_guard.c - resource guard against fake /proc and cgroup trees.
 *
 * Each test builds a tree in a fresh temp dir (proc/meminfo, proc/self/cgroup,
 * sys/fs/cgroup/...) and points the reader or the guard at it. Expected values
 * are computed from the numbers written into the fake files. Time is injected
 * so cache tests do not depend on the scheduler.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admit/guard.h"

#define KB 1024.0 /* kB per MiB */
#define EPS 1e-9

static char root[PATH_MAX];

/* writes <root>/<rel>, creating parent directories */
static void put(const char *rel, const char *text)
{
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
		*p = '/';
	}
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void put_meminfo(unsigned long total_kb, unsigned long avail_kb, unsigned long swap_kb,
                        unsigned long swap_free_kb)
{
	char buf[512];
	snprintf(buf, sizeof(buf),
	         "MemTotal:       %lu kB\nMemFree:        1234 kB\nMemAvailable:   %lu kB\n"
	         "Buffers:          100 kB\nCached:         5000 kB\nSwapCached:        0 kB\n"
	         "SwapTotal:      %lu kB\nSwapFree:       %lu kB\n",
	         total_kb, avail_kb, swap_kb, swap_free_kb);
	put("proc/meminfo", buf);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/vs_guard_XXXXXX");
	return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state)
{
	return nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
	return fake_now;
}

static void guard_on_tree(struct vs_guard *g, int mem, int swap, uint64_t cache_us)
{
	vs_guard_init(g, mem, swap, cache_us);
	vs_guard_set_root(g, root);
	vs_guard_set_clock(g, fake_clock);
	fake_now = 1000000;
}

static void test_meminfo_percent(void **state)
{
	struct vs_mem_reading r;
	put_meminfo(16000000, 4000000, 0, 0);
	assert_int_equal(vs_guard_read(&r, root), 0);
	assert_float_equal(r.mem_percent, 75.0, EPS);
	assert_float_equal(r.mem_total_mb, 16000000 / KB, EPS);
	assert_float_equal(r.mem_available_mb, 4000000 / KB, EPS);
	assert_false(r.cgroup_limited);
	/* no swap at all: 0 %, and a 1 % swap threshold does not refuse */
	assert_float_equal(r.swap_percent, 0.0, EPS);
	assert_float_equal(r.swap_total_mb, 0.0, EPS);

	struct vs_guard g;
	struct vs_guard_verdict v;
	guard_on_tree(&g, 90, 1, 250000);
	assert_int_equal(vs_guard_check(&g, &v), 0);
	assert_null(v.reason);
	assert_int_equal(v.read_err, 0);
	vs_guard_destroy(&g);
}

static void test_threshold_is_exclusive(void **state)
{
	struct vs_guard g;
	struct vs_guard_verdict v;
	put_meminfo(4000000, 1000000, 0, 0); /* exactly 75 % */
	guard_on_tree(&g, 75, 80, 0);
	assert_int_equal(vs_guard_check(&g, &v), 0); /* "exceeds" means > */
	g.mem_threshold_pct = 74;
	assert_int_equal(vs_guard_check(&g, &v), -EBUSY);
	vs_guard_destroy(&g);
}

static void test_swap_over_threshold(void **state)
{
	struct vs_guard g;
	struct vs_guard_verdict v;
	put_meminfo(16000000, 8000000, 2000000, 200000); /* swap 90 % used */
	guard_on_tree(&g, 90, 80, 250000);
	assert_int_equal(vs_guard_check(&g, &v), -EBUSY);
	assert_string_equal(v.reason, "swap");
	assert_int_equal(v.retry_after_s, 120);
	assert_float_equal(v.reading.swap_percent, 90.0, EPS);
	assert_float_equal(v.reading.swap_used_mb, 1800000 / KB, EPS);
	assert_non_null(strstr(v.message, "Swap usage too high"));
	assert_non_null(strstr(v.message, "90.0%"));
	assert_non_null(strstr(v.message, "threshold 80%"));
	assert_non_null(strstr(v.message, "1758 MB used of 1953 MB"));
	vs_guard_destroy(&g);
}

static void test_memory_over_threshold(void **state)
{
	struct vs_guard g;
	struct vs_guard_verdict v;
	/* 24000 MB total, 1650 MB available: 93.125 % used; swap also over, but
	 * memory is checked first */
	put_meminfo(24000 * 1024, 1650 * 1024, 1000, 0);
	guard_on_tree(&g, 90, 80, 250000);
	assert_int_equal(vs_guard_check(&g, &v), -EBUSY);
	assert_string_equal(v.reason, "memory");
	assert_int_equal(v.retry_after_s, 60);
	assert_string_equal(v.message, "Insufficient memory available: memory usage 93.1% exceeds "
	                               "threshold 90% (1650 MB available of 24000 MB)");
	vs_guard_destroy(&g);
}

static void test_cgroup_v2_limit(void **state)
{
	struct vs_mem_reading r;
	put_meminfo(16000000, 14400000, 0, 0); /* the host: 10 % used */
	put("proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
	put("sys/fs/cgroup/kubepods/pod1/ctr/memory.max", "2147483648\n");     /* 2048 MB */
	put("sys/fs/cgroup/kubepods/pod1/ctr/memory.current", "1992294400\n"); /* 1900 MB */
	put("sys/fs/cgroup/kubepods/pod1/ctr/memory.stat",
	    "anon 1000\nfile 2000\nactive_file 5\ninactive_file 104857600\n"); /* 100 MB */
	put("sys/fs/cgroup/kubepods/pod1/memory.max", "max\n");
	assert_int_equal(vs_guard_read(&r, root), 0);
	assert_true(r.cgroup_limited);
	assert_float_equal(r.cgroup_limit_mb, 2048.0, EPS);
	assert_float_equal(r.cgroup_working_set_mb, 1800.0, EPS);
	assert_float_equal(r.mem_total_mb, 2048.0, EPS);
	assert_float_equal(r.mem_available_mb, 248.0, EPS);
	assert_float_equal(r.mem_percent, 1800.0 / 2048.0 * 100.0, EPS);

	struct vs_guard g;
	struct vs_guard_verdict v;
	guard_on_tree(&g, 85, 80, 250000);
	assert_int_equal(vs_guard_check(&g, &v), -EBUSY);
	assert_string_equal(v.reason, "memory");
	assert_non_null(strstr(v.message, "87.9%"));
	assert_non_null(strstr(v.message, "248 MB available of 2048 MB cgroup limit"));
	vs_guard_destroy(&g);
}

static void test_cgroup_parent_limit_binds(void **state)
{
	struct vs_mem_reading r;
	put_meminfo(16000000, 14400000, 0, 0);
	put("proc/self/cgroup", "0::/pod/ctr\n");
	put("sys/fs/cgroup/pod/ctr/memory.max", "max\n");
	put("sys/fs/cgroup/pod/ctr/memory.current", "104857600\n");
	put("sys/fs/cgroup/pod/ctr/memory.stat", "inactive_file 0\n");
	put("sys/fs/cgroup/pod/memory.max", "1073741824\n");               /* 1024 MB on the pod */
	put("sys/fs/cgroup/pod/memory.current", "838860800\n");            /* 800 MB in the pod */
	put("sys/fs/cgroup/pod/memory.stat", "inactive_file 209715200\n"); /* 200 MB */
	assert_int_equal(vs_guard_read(&r, root), 0);
	assert_true(r.cgroup_limited);
	assert_float_equal(r.cgroup_limit_mb, 1024.0, EPS);
	assert_float_equal(r.cgroup_working_set_mb, 600.0, EPS);
	assert_float_equal(r.mem_percent, 600.0 / 1024.0 * 100.0, EPS);
}

static void test_cgroup_max_uses_meminfo(void **state)
{
	struct vs_mem_reading r;
	put_meminfo(16000000, 4000000, 0, 0);
	put("proc/self/cgroup", "0::/svc\n");
	put("sys/fs/cgroup/svc/memory.max", "max\n");
	put("sys/fs/cgroup/svc/memory.current", "524288000\n"); /* 500 MB */
	put("sys/fs/cgroup/svc/memory.stat", "inactive_file 104857600\n");
	assert_int_equal(vs_guard_read(&r, root), 0);
	assert_false(r.cgroup_limited);
	assert_float_equal(r.cgroup_limit_mb, 0.0, EPS);
	assert_float_equal(r.cgroup_working_set_mb, 400.0, EPS);
	assert_float_equal(r.mem_percent, 75.0, EPS);
	assert_float_equal(r.mem_total_mb, 16000000 / KB, EPS);
}

static void test_cgroup_limit_above_ram_ignored(void **state)
{
	struct vs_mem_reading r;
	put_meminfo(1000000, 500000, 0, 0); /* ~977 MB of RAM */
	put("proc/self/cgroup", "0::/svc\n");
	put("sys/fs/cgroup/svc/memory.max", "2147483648\n"); /* 2 GB limit: cannot bind */
	put("sys/fs/cgroup/svc/memory.current", "1048576\n");
	assert_int_equal(vs_guard_read(&r, root), 0);
	assert_false(r.cgroup_limited);
	assert_float_equal(r.cgroup_limit_mb, 2048.0, EPS);
	assert_float_equal(r.mem_percent, 50.0, EPS);
}

static void test_cgroup_namespace_root(void **state)
{
	/* cgroupns: /proc/self/cgroup says "/" and the mount root is our cgroup */
	struct vs_mem_reading r;
	put_meminfo(16000000, 14400000, 0, 0);
	put("proc/self/cgroup", "0::/\n");
	put("sys/fs/cgroup/memory.max", "536870912\n"); /* 512 MB */
	put("sys/fs/cgroup/memory.current", "268435456\n");
	put("sys/fs/cgroup/memory.stat", "inactive_file 0\n");
	assert_int_equal(vs_guard_read(&r, root), 0);
	assert_true(r.cgroup_limited);
	assert_float_equal(r.mem_percent, 50.0, EPS);
	assert_float_equal(r.mem_available_mb, 256.0, EPS);
}

static void test_cgroup_v1(void **state)
{
	struct vs_mem_reading r;
	put_meminfo(16000000, 14400000, 0, 0);
	/* hybrid host: v1 owns the memory controller, v2 line present too */
	put("proc/self/cgroup", "5:cpu,memory:/docker/abc\n1:name=systemd:/x\n0::/\n");
	put("sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "1073741824\n");
	put("sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes", "943718400\n"); /* 900 */
	put("sys/fs/cgroup/memory/docker/abc/memory.stat",
	    "cache 1\ninactive_file 5\ntotal_cache 2\ntotal_inactive_file 209715200\n");
	put("sys/fs/cgroup/memory/docker/memory.limit_in_bytes", "9223372036854771712\n");
	put("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
	assert_int_equal(vs_guard_read(&r, root), 0);
	assert_true(r.cgroup_limited);
	assert_float_equal(r.cgroup_working_set_mb, 700.0, EPS);
	assert_float_equal(r.mem_percent, 700.0 / 1024.0 * 100.0, EPS);

	/* v1 "unlimited" is a huge number, reported as no limit */
	put("sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "9223372036854771712\n");
	assert_int_equal(vs_guard_read(&r, root), 0);
	assert_false(r.cgroup_limited);
	assert_float_equal(r.cgroup_limit_mb, 0.0, EPS);
	assert_float_equal(r.cgroup_working_set_mb, 700.0, EPS);
	assert_float_equal(r.mem_percent, 10.0, EPS);
}

static void test_bad_meminfo(void **state)
{
	struct vs_mem_reading r;
	assert_int_equal(vs_guard_read(&r, root), -ENOENT);
	put("proc/meminfo", "MemFree: 12 kB\n");
	assert_int_equal(vs_guard_read(&r, root), -EINVAL);
	/* no MemAvailable (old kernel): MemFree + Buffers + Cached */
	put("proc/meminfo", "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 100 kB\n");
	assert_int_equal(vs_guard_read(&r, root), 0);
	assert_float_equal(r.mem_percent, 75.0, EPS);
}

static void test_real_proc(void **state)
{
	struct vs_mem_reading r;
	assert_int_equal(vs_guard_read(&r, NULL), 0);
	assert_true(r.mem_percent > 0 && r.mem_percent < 100);
	assert_true(r.mem_total_mb > 0);
	assert_true(r.mem_available_mb > 0 && r.mem_available_mb <= r.mem_total_mb);
	assert_true(r.swap_percent >= 0 && r.swap_percent <= 100);
	assert_int_equal(vs_guard_read(&r, ""), 0);
	assert_true(r.mem_total_mb > 0);
}

static void test_cache_window(void **state)
{
	struct vs_guard g;
	struct vs_guard_verdict v;
	struct vs_mem_reading r;
	put_meminfo(16000000, 4000000, 0, 0); /* 75 % */
	guard_on_tree(&g, 90, 80, 250000);
	assert_int_equal(vs_guard_check(&g, &v), 0);

	put_meminfo(16000000, 800000, 0, 0); /* 95 % */
	fake_now += 249999;
	assert_int_equal(vs_guard_check(&g, &v), 0); /* still the cached 75 % */
	assert_float_equal(v.reading.mem_percent, 75.0, EPS);
	assert_int_equal(vs_guard_snapshot(&g, &r), 0);
	assert_float_equal(r.mem_percent, 75.0, EPS);

	fake_now += 1;
	assert_int_equal(vs_guard_check(&g, &v), -EBUSY);
	assert_float_equal(v.reading.mem_percent, 95.0, EPS);

	/* the snapshot refreshes a stale cache too */
	put_meminfo(16000000, 8000000, 0, 0); /* 50 % */
	fake_now += 250000;
	assert_int_equal(vs_guard_snapshot(&g, &r), 0);
	assert_float_equal(r.mem_percent, 50.0, EPS);
	vs_guard_destroy(&g);
}

static void test_fail_open_flag_once(void **state)
{
	struct vs_guard g;
	struct vs_guard_verdict v;
	struct vs_mem_reading r;
	guard_on_tree(&g, 90, 80, 1000); /* no meminfo in the tree */

	assert_int_equal(vs_guard_snapshot(&g, &r), -ENOENT); /* does not use up the flag */
	assert_float_equal(r.mem_total_mb, 0.0, EPS);
	assert_int_equal(vs_guard_check(&g, &v), 0);
	assert_int_equal(v.read_err, -ENOENT);
	assert_true(v.read_err_new);
	assert_null(v.reason);
	fake_now += 5000; /* re-read, still failing: admitted, not flagged again */
	assert_int_equal(vs_guard_check(&g, &v), 0);
	assert_int_equal(v.read_err, -ENOENT);
	assert_false(v.read_err_new);

	put_meminfo(16000000, 4000000, 0, 0);
	fake_now += 5000;
	assert_int_equal(vs_guard_check(&g, &v), 0);
	assert_int_equal(v.read_err, 0);
	assert_false(v.read_err_new);

	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/proc/meminfo", root);
	assert_int_equal(unlink(path), 0);
	fake_now += 5000; /* a new outage is flagged again */
	assert_int_equal(vs_guard_check(&g, &v), 0);
	assert_true(v.read_err_new);
	vs_guard_destroy(&g);
}

struct race {
	struct vs_guard *g;
	int refused, errors;
};

static void *race_thread(void *arg)
{
	struct race *rc = arg;
	struct vs_guard_verdict v;
	for (int i = 0; i < 2000; i++) {
		int e = vs_guard_check(rc->g, &v);
		if (e == -EBUSY)
			rc->refused++;
		if (v.read_err || v.reading.mem_total_mb <= 0)
			rc->errors++;
	}
	return NULL;
}

static void test_threads_share_guard(void **state)
{
	struct vs_guard g;
	struct race rc[4];
	pthread_t t[4];
	put_meminfo(16000000, 4000000, 0, 0);
	vs_guard_init(&g, 90, 80, 0); /* cache 0: every check re-reads, maximal racing */
	vs_guard_set_root(&g, root);
	for (int i = 0; i < 4; i++) {
		rc[i] = (struct race){.g = &g};
		assert_int_equal(pthread_create(&t[i], NULL, race_thread, &rc[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(rc[i].refused, 0);
		assert_int_equal(rc[i].errors, 0);
	}
	vs_guard_destroy(&g);
	vs_guard_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_meminfo_percent, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_threshold_is_exclusive, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_swap_over_threshold, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_memory_over_threshold, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cgroup_v2_limit, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cgroup_parent_limit_binds, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cgroup_max_uses_meminfo, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cgroup_limit_above_ram_ignored, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_cgroup_namespace_root, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cgroup_v1, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bad_meminfo, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_real_proc, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cache_window, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_fail_open_flag_once, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_threads_share_guard, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
