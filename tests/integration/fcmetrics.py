"""Reading ember's metrics lines: Firecracker's schema (the sections and
names its docs/metrics.md and host_tools/fcmetrics.py list, as of v1.14),
strictly checked, and sums over lines.

Counters in a line are the change since the previous line (Firecracker's
SharedIncMetric); a test that wants everything a device did sums them with
total(). Store metrics (STORE) are values, read from the last line."""
import json

AGG = frozenset({"min_us", "max_us", "sum_us"})

BLOCK = {
    "activate_fails", "cfg_fails", "no_avail_buffer", "event_fails", "execute_fails",
    "invalid_reqs_count", "flush_count", "queue_event_count", "rate_limiter_event_count",
    "update_count", "update_fails", "read_bytes", "write_bytes", "read_count", "write_count",
    "rate_limiter_throttled_events", "io_engine_throttled_events", "remaining_reqs_count",
    ("read_agg", AGG), ("write_agg", AGG),
}
NET = {
    "activate_fails", "cfg_fails", "no_rx_avail_buffer", "no_tx_avail_buffer", "event_fails",
    "rx_queue_event_count", "rx_event_rate_limiter_count", "rx_rate_limiter_throttled",
    "rx_tap_event_count", "rx_bytes_count", "rx_packets_count", "rx_fails", "rx_count",
    "tap_read_fails", "tap_write_fails", "tx_bytes_count", "tx_malformed_frames", "tx_fails",
    "tx_count", "tx_packets_count", "tx_queue_event_count", "tx_rate_limiter_event_count",
    "tx_rate_limiter_throttled", "tx_spoofed_mac_count", "tx_remaining_reqs_count",
    ("tap_write_agg", AGG),
}
SCHEMA = {
    "api_server": {"process_startup_time_us", "process_startup_time_cpu_us"},
    "balloon": {"activate_fails", "inflate_count", "stats_updates_count", "stats_update_fails",
                "deflate_count", "event_fails", "free_page_report_count",
                "free_page_report_freed", "free_page_report_fails", "free_page_hint_count",
                "free_page_hint_freed", "free_page_hint_fails"},
    "block": BLOCK,
    "deprecated_api": {"deprecated_http_api_calls"},
    "get_api_requests": {"instance_info_count", "machine_cfg_count", "mmds_count",
                         "vmm_version_count", "hotplug_memory_count"},
    "i8042": {"error_count", "missed_read_count", "missed_write_count", "read_count",
              "reset_count", "write_count"},
    "latencies_us": {"full_create_snapshot", "diff_create_snapshot", "load_snapshot",
                     "pause_vm", "resume_vm", "vmm_full_create_snapshot",
                     "vmm_diff_create_snapshot", "vmm_load_snapshot", "vmm_pause_vm",
                     "vmm_resume_vm"},
    "logger": {"missed_metrics_count", "metrics_fails", "missed_log_count",
               "rate_limited_log_count"},
    "mmds": {"rx_accepted", "rx_accepted_err", "rx_accepted_unusual", "rx_bad_eth",
             "rx_invalid_token", "rx_no_token", "rx_count", "tx_bytes", "tx_count",
             "tx_errors", "tx_frames", "connections_created", "connections_destroyed"},
    "net": NET,
    "patch_api_requests": {"drive_count", "drive_fails", "network_count", "network_fails",
                           "machine_cfg_count", "machine_cfg_fails", "mmds_count",
                           "mmds_fails", "hotplug_memory_count", "hotplug_memory_fails",
                           "pmem_count", "pmem_fails"},
    "put_api_requests": {"actions_count", "actions_fails", "boot_source_count",
                         "boot_source_fails", "drive_count", "drive_fails", "logger_count",
                         "logger_fails", "machine_cfg_count", "machine_cfg_fails",
                         "cpu_cfg_count", "cpu_cfg_fails", "metrics_count", "metrics_fails",
                         "network_count", "network_fails", "mmds_count", "mmds_fails",
                         "vsock_count", "vsock_fails", "pmem_count", "pmem_fails",
                         "serial_count", "serial_fails", "hotplug_memory_count",
                         "hotplug_memory_fails"},
    "seccomp": {"num_faults"},
    "vcpu": {"exit_io_in", "exit_io_out", "exit_mmio_read", "exit_mmio_write", "failures",
             "kvmclock_ctrl_fails", ("exit_io_in_agg", AGG), ("exit_io_out_agg", AGG),
             ("exit_mmio_read_agg", AGG), ("exit_mmio_write_agg", AGG)},
    "vmm": {"panic_count"},
    "uart": {"error_count", "flush_count", "missed_read_count", "missed_write_count",
             "read_count", "write_count", "rate_limiter_dropped_bytes"},
    "signals": {"sigbus", "sigsegv", "sigxfsz", "sigxcpu", "sigpipe", "sighup", "sigill"},
    "vsock": {"activate_fails", "cfg_fails", "rx_queue_event_fails", "tx_queue_event_fails",
              "ev_queue_event_fails", "muxer_event_fails", "conn_event_fails",
              "rx_queue_event_count", "tx_queue_event_count", "rx_bytes_count",
              "tx_bytes_count", "rx_packets_count", "tx_packets_count", "conns_added",
              "conns_killed", "conns_removed", "killq_resync", "tx_flush_fails",
              "tx_write_fails", "rx_read_fails"},
    "entropy": {"activate_fails", "entropy_event_fails", "entropy_event_count",
                "entropy_bytes", "host_rng_fails", "entropy_rate_limiter_throttled",
                "rate_limiter_event_count"},
    "interrupts": {"triggers", "config_updates"},
    "pmem": {"activate_fails", "cfg_fails", "event_fails", "queue_event_count",
             "rate_limiter_throttled_events", "rate_limiter_event_count"},
    "memory_hotplug": {"activate_fails", "queue_event_fails", "queue_event_count",
                       "plug_count", "plug_bytes", "plug_fails", ("plug_agg", AGG),
                       "unplug_count", "unplug_bytes", "unplug_fails", "unplug_discard_fails",
                       ("unplug_agg", AGG), "state_count", "state_fails", ("state_agg", AGG),
                       "unplug_all_count", "unplug_all_fails", ("unplug_all_agg", AGG)},
}


def _check_section(name, got, want):
    assert isinstance(got, dict), (name, got)
    names = {w if isinstance(w, str) else w[0] for w in want}
    assert set(got) == names, (name, set(got) ^ names)
    for w in want:
        if isinstance(w, str):
            assert isinstance(got[w], int) and got[w] >= 0, (name, w, got[w])
        else:
            _check_section(f"{name}.{w[0]}", got[w[0]], w[1])


def validate(line):
    """Firecracker's sections and names, no more, no fewer; then per-device
    block_*/net_* sections, the optional id and properties, and "ember"."""
    sections = dict(SCHEMA)
    for key in line:
        if key.startswith("block_"):
            sections[key] = BLOCK
        elif key.startswith("net_"):
            sections[key] = NET
    extra = {"utc_timestamp_ms", "id", "properties", "ember"}
    assert set(line) - extra == set(sections), set(line) ^ set(sections)
    assert isinstance(line["utc_timestamp_ms"], int)
    for name, want in sections.items():
        _check_section(name, line[name], want)
    assert isinstance(line["ember"], dict)


def parse(text):
    """Every line of @text as JSON (each must be one whole object)."""
    assert text == "" or text.endswith("\n"), text[-200:]
    return [json.loads(line) for line in text.splitlines()]


def read(path):
    return parse(open(path).read())


def total(lines, *keys):
    """The sum over @lines of the counter at @keys (a path into each line)."""
    s = 0
    for line in lines:
        v = line
        for k in keys:
            v = v[k]
        s += v
    return s
