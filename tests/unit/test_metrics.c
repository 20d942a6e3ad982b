// SPDX-License-Identifier: Apache-2.0
/* Metrics (vmm/metrics.c): counters restart at each line written and
 * values stay; a line that does not fit in a FIFO is dropped whole, counted,
 * and its counts go into the next line; the endpoint table; open errors. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm.h"

static char dir[] = "/tmp/ember-metrics-XXXXXX";
static char fifo[128];
static struct vmm vmm;
static int reader = -1;

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	if (mkfifo(fifo, 0600) < 0 || event_loop_init(&vmm.loop) < 0)
		return -1;
	vmm.cfg.id = strdup("unit");
	vmm.metrics.fd = -1;
	vmm.metrics.timer_fd = -1;
	/* No reader yet: the open must not fail (ENXIO) or wait. */
	if (metrics_start(&vmm, fifo) < 0)
		return -1;
	reader = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	return reader < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	close(reader);
	unlink(fifo);
	rmdir(dir);
	return 0;
}

/* The one line in the FIFO now, parsed; fails unless it is exactly one. */
static json_t *one_line(void)
{
	static char buf[1 << 17];
	ssize_t n = read(reader, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = 0;
	char *nl = strchr(buf, '\n');
	assert_non_null(nl);
	assert_ptr_equal(nl, buf + n - 1);
	json_error_t e;
	json_t *line = json_loads(buf, 0, &e);
	assert_non_null(line);
	return line;
}

static json_int_t get(json_t *line, const char *a, const char *b, const char *c)
{
	json_t *v = json_object_get(json_object_get(line, a), b);
	if (c)
		v = json_object_get(v, c);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static void counters_restart_and_values_stay(void **state)
{
	(void)state;
	metrics_api_request(&vmm, "PUT", "/drives/a", NULL, 204, 10, 5);
	metrics_api_request(&vmm, "PUT", "/drives/b", NULL, 400, 900, 5);
	metrics_api_request(&vmm, "GET", "/", NULL, 200, 7, 1);
	assert_int_equal(metrics_flush(&vmm), 0);
	json_t *l = one_line();
	assert_int_equal(get(l, "put_api_requests", "drive_count", NULL), 2);
	assert_int_equal(get(l, "put_api_requests", "drive_fails", NULL), 1);
	assert_int_equal(get(l, "get_api_requests", "instance_info_count", NULL), 1);
	assert_int_equal(get(l, "ember", "api", "requests"), 3);
	assert_int_equal(get(l, "ember", "api", "latency_us_max"), 900);
	assert_null(json_object_get(l, "id"));
	json_decref(l);

	assert_int_equal(metrics_flush(&vmm), 0);
	l = one_line();
	assert_int_equal(get(l, "put_api_requests", "drive_count", NULL), 0);
	assert_int_equal(get(l, "put_api_requests", "drive_fails", NULL), 0);
	assert_int_equal(get(l, "ember", "api", "requests"), 0);
	assert_int_equal(get(l, "ember", "api", "latency_us_max"), 900); /* a value */
	json_decref(l);
}

static void full_fifo_drops_whole_lines_and_keeps_their_counts(void **state)
{
	(void)state;
	int size = fcntl(vmm.metrics.fd, F_GETPIPE_SZ);
	assert_true(size >= 16384);
	/* One page: no line (several KB) fits with the slack. */
	assert_true(fcntl(vmm.metrics.fd, F_SETPIPE_SZ, 4096) > 0);
	metrics_api_request(&vmm, "PUT", "/actions", NULL, 204, 1, 1);
	for (int i = 0; i < 3; i++)
		assert_int_equal(metrics_flush(&vmm), -EAGAIN);
	int queued = -1;
	assert_int_equal(ioctl(reader, FIONREAD, &queued), 0);
	assert_int_equal(queued, 0); /* nothing, not part of a line */
	assert_true(fcntl(vmm.metrics.fd, F_SETPIPE_SZ, size) >= size);
	assert_int_equal(metrics_flush(&vmm), 0);
	json_t *l = one_line();
	assert_int_equal(get(l, "logger", "missed_metrics_count", NULL), 3);
	assert_int_equal(get(l, "logger", "metrics_fails", NULL), 0);
	assert_int_equal(get(l, "put_api_requests", "actions_count", NULL), 1);
	json_decref(l);
}

static void endpoint_table_and_deprecated_fields(void **state)
{
	(void)state;
	json_t *vsock = json_pack("{s:s, s:i}", "vsock_id", "v", "guest_cid", 3);
	json_t *load = json_pack("{s:s}", "mem_file_path", "/m");
	json_t *machine = json_pack("{s:n}", "cpu_template");
	metrics_api_request(&vmm, "PUT", "/drives", NULL, 400, 1, 1); /* no id: not a drive */
	metrics_api_request(&vmm, "PUT", "/drives/x/y", NULL, 400, 1, 1); /* not an id */
	metrics_api_request(&vmm, "PUT", "/drives/x", NULL, 400, 1, 1);
	metrics_api_request(&vmm, "PUT", "/mmds/config", NULL, 400, 1, 1);
	metrics_api_request(&vmm, "PUT", "/machine-configX", NULL, 400, 1, 1);
	metrics_api_request(&vmm, "PATCH", "/network-interfaces/eth0", NULL, 204, 1, 1);
	metrics_api_request(&vmm, "PUT", "/vsock", vsock, 204, 1, 1);
	metrics_api_request(&vmm, "PUT", "/snapshot/load", load, 400, 1, 1);
	metrics_api_request(&vmm, "PUT", "/machine-config", machine, 204, 1, 1); /* null: absent */
	assert_int_equal(metrics_flush(&vmm), 0);
	json_t *l = one_line();
	assert_int_equal(get(l, "put_api_requests", "drive_count", NULL), 1);
	assert_int_equal(get(l, "put_api_requests", "drive_fails", NULL), 1);
	assert_int_equal(get(l, "put_api_requests", "mmds_fails", NULL), 1);
	assert_int_equal(get(l, "put_api_requests", "machine_cfg_count", NULL), 1);
	assert_int_equal(get(l, "patch_api_requests", "network_count", NULL), 1);
	assert_int_equal(get(l, "patch_api_requests", "network_fails", NULL), 0);
	assert_int_equal(get(l, "put_api_requests", "vsock_count", NULL), 1);
	assert_int_equal(get(l, "deprecated_api", "deprecated_http_api_calls", NULL), 2);
	assert_int_equal(get(l, "ember", "api", "errors"), 6);
	json_decref(l);
	json_decref(vsock);
	json_decref(load);
	json_decref(machine);
}

static void open_errors(void **state)
{
	(void)state;
	assert_int_equal(metrics_start(&vmm, fifo), -EALREADY);
	static struct vmm other;
	other.metrics.fd = -1;
	assert_int_equal(event_loop_init(&other.loop), 0);
	assert_int_equal(metrics_start(&other, ""), -ENOENT);
	assert_int_equal(metrics_start(&other, "/nonexistent/dir/m"), -ENOENT);
	assert_int_equal(metrics_start(&other, dir), -EISDIR);
	assert_int_equal(other.metrics.fd, -1);
	assert_int_equal(metrics_flush(&other), -ENODEV);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(counters_restart_and_values_stay),
		cmocka_unit_test(full_fifo_drops_whole_lines_and_keeps_their_counts),
		cmocka_unit_test(endpoint_table_and_deprecated_fields),
		cmocka_unit_test(open_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
