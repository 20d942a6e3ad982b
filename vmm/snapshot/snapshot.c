// SPDX-License-Identifier: Apache-2.0
/* Snapshot create and load: see snapshot.h. */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "acpi/acpi.h"
#include "exit_codes.h"
#include "files.h"
#include "format.h"
#include "kvm_state.h"
#include "uffd.h"
#include "kvm.h"
#include "log.h"
#include "vcpu.h"
#include "vmm.h"

struct snap_memory {
	uint64_t size;
	uint32_t nr_regions, pad;
	struct {
		uint64_t gpa, size;
	} regions[GUEST_MEM_MAX_REGIONS];
};

/* Every virtio-mmio transport, in the order the builder attached them. */
static unsigned int transports(struct vmm *vmm, struct virtio_mmio **out)
{
	unsigned int n = 0;
	for (unsigned int i = 0; i < vmm->nr_blks; i++)
		out[n++] = &vmm->blks[i].transport;
	for (unsigned int i = 0; i < vmm->nr_nets; i++)
		out[n++] = &vmm->nets[i].transport;
	if (vmm->vsock)
		out[n++] = &vmm->vsock->transport;
	if (vmm->rng)
		out[n++] = &vmm->rng->transport;
	if (vmm->balloon)
		out[n++] = &vmm->balloon->transport;
	return n;
}

/*
 * How many rate limiters transport @i (in transports()'s order) has: one per
 * block or entropy device, two per network device (RX, TX), none for vsock
 * or the balloon.
 */
static uint32_t limiter_count(unsigned int nr_blks, unsigned int nr_nets, bool vsock, bool rng,
			      unsigned int i)
{
	if (i < nr_blks)
		return 1;
	if (i < nr_blks + nr_nets)
		return 2;
	i -= nr_blks + nr_nets + (vsock ? 1 : 0);
	return rng && i == 0 ? 1 : 0; /* then the balloon, which has none */
}

static void limiters_save(struct vmm *vmm, unsigned int i, struct snap_rate_limiters *s)
{
	memset(s, 0, sizeof(*s));
	s->count = limiter_count(vmm->nr_blks, vmm->nr_nets, vmm->vsock, vmm->rng, i);
	if (i < vmm->nr_blks)
		virtio_blk_save_limiter(&vmm->blks[i], &s->rl[0]);
	else if (i < vmm->nr_blks + vmm->nr_nets)
		virtio_net_save_limiters(&vmm->nets[i - vmm->nr_blks], s->rl);
	else if (s->count)
		virtio_rng_save_limiter(vmm->rng, &s->rl[0]);
}

static int limiters_restore(struct vmm *vmm, unsigned int i, const struct snap_rate_limiters *s,
			    const char **why)
{
	if (i < vmm->nr_blks)
		return virtio_blk_restore_limiter(&vmm->blks[i], &s->rl[0], why);
	if (i < vmm->nr_blks + vmm->nr_nets)
		return virtio_net_restore_limiters(&vmm->nets[i - vmm->nr_blks], s->rl, why);
	return s->count ? virtio_rng_restore_limiter(vmm->rng, &s->rl[0], why) : 0;
}

int snapshot_create(struct vmm *vmm, const char *state_path, const char *mem_path,
		    enum snapshot_type type, char *err, size_t err_len)
{
	struct vm *vm = &vmm->vm;
	if (vmm->state != VMM_PAUSED)
		return snap_fail(err, err_len, -EINVAL,
				 "the microVM must be paused to snapshot it");
	/* As in Firecracker, a Diff is always allowed (see snapshot.h). One
	 * with no base to diff against holds every page: it restores alone. */
	bool whole = type == SNAPSHOT_FULL || !vmm->has_snapshot_base;
	uint64_t t0 = clock_now_ns();
	/* Devices quiesce: block requests in flight complete, vsock peers are
	 * told the transport reset (connections do not survive a restore). */
	for (unsigned int i = 0; i < vmm->nr_blks; i++)
		if (virtio_blk_drain(&vmm->blks[i]) < 0)
			return snap_fail(err, err_len, -EIO,
					 "drive '%s': requests in flight did not finish",
					 vmm->blks[i].id);
	if (vmm->vsock) {
		pthread_mutex_lock(&vmm->vsock->transport.lock);
		virtio_vsock_transport_reset(vmm->vsock);
		pthread_mutex_unlock(&vmm->vsock->transport.lock);
	}

	struct snap_writer w;
	snap_writer_init(&w);
	json_t *cfg = vmm_config_json(vmm);
	json_object_del(cfg, "boot-source");
	json_object_del(cfg, "logger");
	json_object_del(cfg, "metrics");
	char *cfg_s = json_dumps(cfg, JSON_COMPACT);
	json_decref(cfg);
	if (!cfg_s)
		return snap_fail(err, err_len, -ENOMEM, "out of memory");
	snap_writer_add(&w, SNAP_CONFIG, 0, cfg_s, (uint32_t)strlen(cfg_s));
	free(cfg_s);

	struct snap_memory mem = { .size = vm->mem.size, .nr_regions = vm->mem.nr_regions };
	for (unsigned int i = 0; i < vm->mem.nr_regions; i++) {
		mem.regions[i].gpa = vm->mem.regions[i].gpa;
		mem.regions[i].size = vm->mem.regions[i].size;
	}
	snap_writer_add(&w, SNAP_MEMORY, 0, &mem, sizeof(mem));

	int r = 0;
	static struct snap_vcpu sv;
	for (unsigned int i = 0; i < vm->nr_vcpus && r == 0; i++) {
		r = snap_save_vcpu(&vm->vcpus[i], &sv);
		if (r == 0)
			snap_writer_add(&w, SNAP_VCPU, i, &sv, sizeof(sv));
	}
	struct snap_vm svm;
	if (r == 0)
		r = snap_save_vm(vm, &svm);
	if (r < 0) {
		snap_writer_free(&w);
		return snap_fail(err, err_len, r, "cannot read KVM state: %s", strerror(-r));
	}
	const struct snap_clock clk = { .realtime_ns = snap_realtime_ns() };
	snap_writer_add(&w, SNAP_VM, 0, &svm, sizeof(svm));
	snap_writer_add(&w, SNAP_CLOCK, 0, &clk, sizeof(clk));
	static struct {
		struct kvm_cpuid2 hdr;
		struct kvm_cpuid_entry2 e[SNAP_MAX_CPUID];
	} cpuid;
	cpuid.hdr.nent = SNAP_MAX_CPUID;
	if (ioctl(vm->vcpus[0].fd, KVM_GET_CPUID2, &cpuid) < 0) {
		snap_writer_free(&w);
		return snap_fail(err, err_len, -errno, "cannot read the vCPUs' CPUID: %s",
				 strerror(errno));
	}
	snap_writer_add(&w, SNAP_CPUID, 0, cpuid.e, cpuid.hdr.nent * sizeof(cpuid.e[0]));
	struct snap_serial ss;
	snap_save_serial(&vmm->serial, &ss);
	snap_writer_add(&w, SNAP_SERIAL, 0, &ss, sizeof(ss));
	if (vmm->vmgenid) {
		const struct snap_vmgenid g = { .addr = VMGENID_ADDR, .gsi = GED_IRQ };
		snap_writer_add(&w, SNAP_VMGENID, 0, &g, sizeof(g));
	}
	struct virtio_mmio *ts[VIRTIO_MAX_DEVICES];
	unsigned int nt = transports(vmm, ts);
	for (unsigned int i = 0; i < nt; i++) {
		struct virtio_mmio_state st;
		virtio_mmio_save(ts[i], &st);
		snap_writer_add(&w, SNAP_VIRTIO, i, &st, sizeof(st));
		struct snap_rate_limiters rl;
		limiters_save(vmm, i, &rl);
		if (rl.count)
			snap_writer_add(&w, SNAP_RATE_LIMITER, i, &rl, sizeof(rl));
	}
	if (vmm->balloon) {
		struct balloon_state bs;
		virtio_balloon_save(vmm->balloon, &bs);
		snap_writer_add(&w, SNAP_BALLOON, 0, &bs, sizeof(bs));
	}
	if (snap_writer_finish(&w) < 0) {
		snap_writer_free(&w);
		return snap_fail(err, err_len, -ENOMEM, "out of memory");
	}
	uint64_t t1 = clock_now_ns();

	bool consumed = false;
	r = snap_write_files(vm, state_path, mem_path, whole, w.buf, w.len, &consumed, err,
			     err_len);
	snap_writer_free(&w);
	if (r < 0) {
		/* The dirty pages this Diff read are in no file: a later Diff
		 * would miss them, so it holds every page instead. */
		if (consumed) {
			vmm->has_snapshot_base = false;
			size_t n = strlen(err);
			snprintf(err + n, err_len - n,
				 "; the next snapshot holds every page, Diff or not");
		}
		return r;
	}
	/* The next Diff starts from here (a Diff cleared its logs as it read them). */
	if (vm->track_dirty && whole)
		snap_reset_dirty_log(vm);
	vmm->has_snapshot_base = true;
	log_info("%s snapshot%s: state %llu us, memory %llu us",
		 type == SNAPSHOT_FULL ? "Full" : "Diff",
		 type == SNAPSHOT_DIFF && whole			 ? " (no base: every page)"
		     : type == SNAPSHOT_DIFF && !vm->track_dirty ? " (resident pages, mincore)"
								 : "",
		 (unsigned long long)((t1 - t0) / 1000),
		 (unsigned long long)((clock_now_ns() - t1) / 1000));
	return 0;
}

/* ---- load ------------------------------------------------------------------------ */

static uint8_t *read_state(const char *path, size_t *len, char *err, size_t err_len)
{
	/* O_NONBLOCK: a FIFO named here is refused below, not waited on. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		snap_fail(err, err_len, 0, "cannot open snapshot_path '%s': %s", path,
			  strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > SNAP_MAX_FILE) {
		snap_fail(err, err_len, 0,
			  "snapshot_path '%s' is not a state file ember wrote (%s)", path,
			  S_ISREG(st.st_mode) ? "too large" : "not a regular file");
		close(fd);
		return NULL;
	}
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	size_t off = 0;
	while (buf && off < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + off, (size_t)st.st_size - off);
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	close(fd);
	if (!buf || off != (size_t)st.st_size) {
		free(buf);
		snap_fail(err, err_len, 0, "cannot read snapshot_path '%s'", path);
		return NULL;
	}
	*len = off;
	return buf;
}

/* GET /vm/config shows unset fields as null; PUT bodies leave them out. */
static void drop_nulls(json_t *o)
{
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(o, tmp, k, v)
	{
		if (json_is_null(v))
			json_object_del(o, k);
		else if (json_is_object(v))
			drop_nulls(v);
	}
}

/* The configuration in the snapshot, with the load request's overrides. */
static json_t *load_config(const struct snap_reader *rd, const struct snapshot_load *a, char *err,
			   size_t err_len)
{
	const struct snap_section *s = snap_find(rd, SNAP_CONFIG, 0);
	json_error_t je;
	json_t *cfg =
	    s ? json_loadb((const char *)s->data, s->len, JSON_REJECT_DUPLICATES, &je) : NULL;
	if (!json_is_object(cfg)) {
		snap_fail(err, err_len, 0,
			  "the snapshot's configuration section is missing or invalid");
		json_decref(cfg);
		return NULL;
	}
	/* What snapshot_create() writes. A boot-source, logger or metrics
	 * section would reconfigure this process (open files) on a load. */
	static const char *const sections[] = { "drives",      "machine-config",
						"cpu-config",  "network-interfaces",
						"vsock",       "entropy",
						"mmds-config", "balloon",
						NULL };
	const char *key;
	json_t *v;
	json_object_foreach(cfg, key, v)
	{
		const char *const *k = sections;
		while (*k && strcmp(*k, key) != 0)
			k++;
		if (!*k) {
			snap_fail(err, err_len, 0,
				  "the snapshot's configuration has a `%s` section", key);
			json_decref(cfg);
			return NULL;
		}
	}
	json_t *nets = json_object_get(cfg, "network-interfaces");
	for (unsigned int i = 0; i < a->nr_net_overrides; i++) {
		size_t k;
		json_t *n;
		bool found = false;
		json_array_foreach(nets, k, n)
		{
			const char *id = json_string_value(json_object_get(n, "iface_id"));
			if (id && strcmp(id, a->net_iface[i]) == 0) {
				json_object_set_new(n, "host_dev_name",
						    json_string(a->net_host_dev[i]));
				found = true;
			}
		}
		if (!found) {
			snap_fail(err, err_len, 0,
				  "network_overrides: the snapshot has no interface '%s'",
				  a->net_iface[i]);
			json_decref(cfg);
			return NULL;
		}
	}
	json_t *vsock = json_object_get(cfg, "vsock");
	if (a->vsock_uds_path) {
		if (!json_is_object(vsock)) {
			snap_fail(err, err_len, 0,
				  "vsock_override: the snapshot has no vsock device");
			json_decref(cfg);
			return NULL;
		}
		json_object_set_new(vsock, "uds_path", json_string(a->vsock_uds_path));
	}
	drop_nulls(cfg);
	size_t k;
	json_t *item;
	json_array_foreach(json_object_get(cfg, "drives"), k, item) drop_nulls(item);
	json_array_foreach(nets, k, item) drop_nulls(item);
	json_t *m = json_object_get(cfg, "machine-config");
	if (json_is_object(m))
		json_object_set_new(m, "track_dirty_pages", json_boolean(a->track_dirty_pages));
	return cfg;
}

/*
 * Version 2's sections: the wall-clock time, and one rate-limiter section
 * per block, network and entropy device, each limiter's buckets consistent
 * (checked by restoring them into a scratch limiter).
 */
static int check_v2(struct vmm *vmm, const struct snap_reader *rd, unsigned int ndev, char *err,
		    size_t err_len)
{
	struct snap_clock clk;
	if (snap_get(rd, SNAP_CLOCK, 0, &clk, sizeof(clk)) < 0 || clk.reserved)
		return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
				 "the snapshot's clock section is missing or invalid");
	const struct vmm_config *cfg = &vmm->cfg;
	for (unsigned int i = 0; i <= ndev; i++) {
		uint32_t want = i < ndev ? limiter_count(cfg->nr_drives, cfg->nr_nets,
							 cfg->vsock.set, cfg->entropy.set, i)
					 : 0;
		const struct snap_section *s = snap_find(rd, SNAP_RATE_LIMITER, i);
		if (!want && !s)
			continue;
		struct snap_rate_limiters rl;
		if (!want || snap_get(rd, SNAP_RATE_LIMITER, i, &rl, sizeof(rl)) < 0 ||
		    rl.count != want || rl.reserved)
			return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
					 "the snapshot's rate limiters do not match its devices "
					 "(device %u)",
					 i);
		for (uint32_t k = 0; k < 2; k++) {
			struct rate_limiter scratch = { 0 };
			const char *why = "";
			if (rate_limiter_restore(&scratch, &rl.rl[k], 0, &why) < 0 ||
			    (k >= want && rate_limiter_enabled(&scratch)))
				return snap_fail(
				    err, err_len, EMBER_EXIT_SNAPSHOT,
				    "the rate limiter state of device %u is invalid: %s", i,
				    k >= want ? "an unused limiter is set" : why);
		}
	}
	return 0;
}

/* Everything that can be checked before a VM exists. */
/*
 * The guest already saw the CPUID the snapshot holds: every feature bit in
 * it must be one this host gives the rebuilt vCPUs (same template), or the
 * guest would use an instruction or MSR that is no longer there.
 */
static int check_cpuid(struct vmm *vmm, const struct snap_reader *rd, char *err, size_t err_len)
{
	const struct snap_section *s = snap_find(rd, SNAP_CPUID, 0);
	if (!s)
		return 0; /* a version 1 or 2 file: nothing recorded */
	size_t n = s->len / sizeof(struct kvm_cpuid_entry2);
	if (s->len % sizeof(struct kvm_cpuid_entry2) || n > SNAP_MAX_CPUID)
		return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT, "the CPUID section is invalid");
	static struct kvm_cpuid_entry2 saved[SNAP_MAX_CPUID];
	memcpy(saved, s->data, s->len);
	static struct {
		struct kvm_cpuid2 hdr;
		struct kvm_cpuid_entry2 e[SNAP_MAX_CPUID];
	} now;
	now.hdr.nent = SNAP_MAX_CPUID;
	if (ioctl(vmm->vm.vcpus[0].fd, KVM_GET_CPUID2, &now) < 0)
		return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
				 "cannot read the vCPUs' CPUID: %s", strerror(errno));
	char why[240];
	if (cpu_cpuid_check_subset(saved, (uint32_t)n, &now.hdr, why, sizeof(why)) < 0)
		return snap_fail(
		    err, err_len, EMBER_EXIT_SNAPSHOT,
		    "this host cannot satisfy the snapshot's CPU (template %s): %s",
		    vmm->cfg.cpu_custom ? "custom" : cpu_template_name(vmm->cfg.cpu_template), why);
	return 0;
}

static int check_state(struct vmm *vmm, const struct snap_reader *rd, char *err, size_t err_len)
{
	struct snap_memory mem;
	struct guest_mem layout;
	if (snap_get(rd, SNAP_MEMORY, 0, &mem, sizeof(mem)) < 0 ||
	    guest_mem_layout(&layout, vmm->cfg.mem_mib << 20, MMIO_GAP_START, MMIO_GAP_END) < 0 ||
	    mem.size != layout.size || mem.nr_regions != layout.nr_regions)
		return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
				 "the snapshot's memory layout is invalid");
	for (unsigned int i = 0; i < layout.nr_regions; i++)
		if (mem.regions[i].gpa != layout.regions[i].gpa ||
		    mem.regions[i].size != layout.regions[i].size)
			return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
					 "the snapshot's memory layout is invalid");
	for (unsigned int i = 0; i < vmm->cfg.vcpus; i++) {
		const struct snap_section *s = snap_find(rd, SNAP_VCPU, i);
		const struct snap_vcpu *v = s ? (const struct snap_vcpu *)s->data : NULL;
		if (!s || s->len != sizeof(struct snap_vcpu) || v->nr_msrs > SNAP_MAX_MSRS)
			return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
					 "the state of vCPU %u is missing or invalid", i);
	}
	if (snap_find(rd, SNAP_VCPU, vmm->cfg.vcpus))
		return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
				 "the snapshot has more vCPUs than configured");
	const struct snap_section *s = snap_find(rd, SNAP_VM, 0),
				  *ser = snap_find(rd, SNAP_SERIAL, 0);
	if (!s || s->len != sizeof(struct snap_vm) || !ser ||
	    ser->len != sizeof(struct snap_serial))
		return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
				 "the VM or serial state is missing or invalid");
	unsigned int ndev = vmm->cfg.nr_drives + vmm->cfg.nr_nets + (vmm->cfg.vsock.set ? 1 : 0) +
	    (vmm->cfg.entropy.set ? 1 : 0) + (vmm->cfg.balloon.set ? 1 : 0);
	for (unsigned int i = 0; i <= ndev; i++) {
		s = snap_find(rd, SNAP_VIRTIO, i);
		if ((i < ndev) != (s && s->len == sizeof(struct virtio_mmio_state)))
			return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
					 "the snapshot's devices do not match its configuration");
	}
	return rd->version < 2 ? 0 : check_v2(vmm, rd, ndev, err, err_len);
}

/*
 * Every clone of a snapshot gets its own generation ID before its vCPUs
 * run, and the Generic Event Device's interrupt tells the guest (Linux's
 * vmgenid driver then reseeds its RNG). The edge waits in the restored
 * IOAPIC until a vCPU takes it.
 */
static int restore_vmgenid(struct vmm *vmm, const struct snap_reader *rd, char *err, size_t err_len)
{
	struct snap_vmgenid g;
	if (!snap_find(rd, SNAP_VMGENID, 0))
		return 0;
	if (snap_get(rd, SNAP_VMGENID, 0, &g, sizeof(g)) < 0 || g.addr != VMGENID_ADDR ||
	    g.gsi != GED_IRQ || g.reserved)
		return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
				 "the snapshot's VMGenID section is invalid (this ember keeps the "
				 "generation ID at 0x%llx, notified on GSI %d)",
				 (unsigned long long)VMGENID_ADDR, GED_IRQ);
	int r = vmgenid_update(&vmm->vm.mem);
	if (r == 0)
		r = vm_irq_pulse(&vmm->vm, GED_IRQ);
	if (r < 0)
		return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
				 "cannot give the VM a new generation ID: %s", strerror(-r));
	vmm->vmgenid = true;
	return 0;
}

static int restore_all(struct vmm *vmm, const struct snap_reader *rd, bool clock_realtime,
		       char *err, size_t err_len)
{
	struct vm *vm = &vmm->vm;
	const char *why = "";
	static struct snap_vm svm;
	static struct snap_vcpu sv;
	struct snap_serial ss;
	struct snap_clock clk = { 0 };
	const char *how = "";
	if (rd->version >= 2 && snap_get(rd, SNAP_CLOCK, 0, &clk, sizeof(clk)) < 0)
		return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT, "the clock section is invalid");
	if (snap_get(rd, SNAP_VM, 0, &svm, sizeof(svm)) < 0 ||
	    snap_restore_vm(vm, &svm, clock_realtime, clk.realtime_ns, &how, &why) < 0)
		return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
				 "cannot restore the VM state: %s: %s", why, strerror(errno));
	log_info("kvmclock restored %s", how);
	if (snap_get(rd, SNAP_SERIAL, 0, &ss, sizeof(ss)) < 0 ||
	    snap_restore_serial(&vmm->serial, &ss) < 0)
		return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
				 "the serial port state is invalid");
	struct virtio_mmio *ts[VIRTIO_MAX_DEVICES];
	unsigned int nt = transports(vmm, ts);
	/* The buckets first: a restored transport may serve its ring at once. */
	for (unsigned int i = 0; i < nt && rd->version >= 2; i++) {
		struct snap_rate_limiters rl;
		if (!snap_find(rd, SNAP_RATE_LIMITER, i))
			continue;
		if (snap_get(rd, SNAP_RATE_LIMITER, i, &rl, sizeof(rl)) < 0 ||
		    limiters_restore(vmm, i, &rl, &why) < 0)
			return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
					 "device %s: rate limiter: %s", ts[i]->name, why);
	}
	/* The balloon's target and the guest's count before its transport
	 * (which may serve the statistics buffer at once). */
	if (vmm->balloon) {
		struct balloon_state bs;
		if (snap_get(rd, SNAP_BALLOON, 0, &bs, sizeof(bs)) < 0 ||
		    virtio_balloon_restore(vmm->balloon, &bs, &why) < 0)
			return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT, "device balloon: %s",
					 snap_find(rd, SNAP_BALLOON, 0) ? why
									: "its state is missing");
	} else if (snap_find(rd, SNAP_BALLOON, 0)) {
		return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
				 "the snapshot has balloon state but no balloon device");
	}
	for (unsigned int i = 0; i < nt; i++) {
		struct virtio_mmio_state st;
		if (snap_get(rd, SNAP_VIRTIO, i, &st, sizeof(st)) < 0 ||
		    virtio_mmio_restore(ts[i], &st, &why) < 0)
			return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT, "device %s: %s",
					 ts[i]->name, why);
	}
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		if (snap_get(rd, SNAP_VCPU, i, &sv, sizeof(sv)) < 0 ||
		    snap_restore_vcpu(&vm->vcpus[i], &sv, &why) < 0)
			return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
					 "cannot restore vCPU %u: %s: %s", i, why, strerror(errno));
	}
	/*
	 * An interrupt a device raised just before the snapshot (the vsock's
	 * transport reset event always is one) may be missing from the saved
	 * IOAPIC and local APICs: KVM delivers an irqfd's IOAPIC edge from a
	 * kernel worker, after ember's write. A transport whose interrupt
	 * status is set has one the driver has not handled: raise it again,
	 * now that the local APICs are back (one that did arrive is pending
	 * there still, and the second edge merges with it).
	 */
	for (unsigned int i = 0; i < nt; i++) {
		int r = ts[i]->interrupt_status ? vm_irq_pulse(vm, ts[i]->irq) : 0;
		if (r < 0)
			return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT,
					 "device %s: cannot raise its pending interrupt: %s",
					 ts[i]->name, strerror(-r));
	}
	return restore_vmgenid(vmm, rd, err, err_len);
}

/* snapshot_load's steps, timed for the Debug breakdown. */
enum load_step {
	LOAD_QUEUE, /* request arrival (or process start) to snapshot_load() */
	LOAD_READ,
	LOAD_CONFIG,
	LOAD_MEMFILE,
	LOAD_BUILD,
	LOAD_RESTORE,
	LOAD_THREADS,
	LOAD_NR
};

static void load_stamp(uint64_t *ns, enum load_step step, uint64_t *t)
{
	uint64_t now = clock_now_ns();
	ns[step] = now - *t;
	*t = now;
}

static const char *vm_warm_name(enum vm_warm w)
{
	switch (w) {
	case VM_WARM_SHAPED:
		return "pre-warmed VM with slots, irqchip and vCPUs";
	case VM_WARM_EMPTY:
		return "pre-warmed VM";
	case VM_WARM_KVM:
		return "pre-warmed /dev/kvm, new VM";
	default:
		return "new VM";
	}
}

/* One Debug line with where the load's time went, in microseconds. */
static void load_log_breakdown(const struct vm *vm, const uint64_t *ns)
{
	const uint64_t *p = vm->phase_ns;
	uint64_t vm_ns = 0;
	for (unsigned int i = 0; i < VM_NR_PHASES; i++)
		vm_ns += p[i];
	log_debug(
	    "snapshot load breakdown (us): before load %llu, read %llu, parse+config %llu, "
	    "memory file "
	    "%llu, build %llu (%s, kvm %llu, vm %llu, memory %llu, irqchip+pit %llu, vcpus "
	    "%llu, devices %llu), state restore %llu, vcpu threads %llu",
	    (unsigned long long)(ns[LOAD_QUEUE] / 1000), (unsigned long long)(ns[LOAD_READ] / 1000),
	    (unsigned long long)(ns[LOAD_CONFIG] / 1000),
	    (unsigned long long)(ns[LOAD_MEMFILE] / 1000),
	    (unsigned long long)(ns[LOAD_BUILD] / 1000), vm_warm_name(vm->prewarmed),
	    (unsigned long long)(p[VM_PHASE_KVM] / 1000),
	    (unsigned long long)(p[VM_PHASE_CREATE] / 1000),
	    (unsigned long long)(p[VM_PHASE_MEMORY] / 1000),
	    (unsigned long long)(p[VM_PHASE_IRQCHIP] / 1000),
	    (unsigned long long)(p[VM_PHASE_VCPUS] / 1000),
	    (unsigned long long)((ns[LOAD_BUILD] > vm_ns ? ns[LOAD_BUILD] - vm_ns : 0) / 1000),
	    (unsigned long long)(ns[LOAD_RESTORE] / 1000),
	    (unsigned long long)(ns[LOAD_THREADS] / 1000));
}

int snapshot_load(struct vmm *vmm, const struct snapshot_load *a, char *err, size_t err_len)
{
	uint64_t t0 = clock_now_us();
	uint64_t t_ns = clock_now_ns(), load_ns = t_ns;
	uint64_t steps[LOAD_NR] = { 0 };
	if (a->request_ns && a->request_ns <= load_ns) {
		steps[LOAD_QUEUE] = load_ns - a->request_ns;
		load_ns = a->request_ns;
	}
	size_t len = 0;
	uint8_t *buf = read_state(a->state_path, &len, err, err_len);
	if (!buf)
		return EMBER_EXIT_SNAPSHOT;
	load_stamp(steps, LOAD_READ, &t_ns);
	struct snap_reader rd;
	const char *why = "";
	int r = snap_reader_init(&rd, buf, len, &why);
	if (r < 0) {
		free(buf);
		return snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT, "snapshot_path '%s': %s",
				 a->state_path, why);
	}
	/* Uffd with a socket is Firecracker's external handler, with a file
	 * ember's own. Checked before the configuration is taken. */
	struct stat st;
	bool external = a->uffd && stat(a->mem_path, &st) == 0 && S_ISSOCK(st.st_mode);
	json_t *cfg = NULL;
	int mem_fd = -1;
	r = EMBER_EXIT_SNAPSHOT;
	if (external && (a->ws_record || a->ws_prefetch)) {
		snap_fail(
		    err, err_len, 0,
		    "mem_backend: working sets need ember's own userfaultfd handler (backend_path "
		    "a "
		    "memory file), not a socket");
		goto out;
	}
	cfg = load_config(&rd, a, err, err_len);
	if (!cfg)
		goto out;
	char cerr[400];
	if (vmm_load_config_json(vmm, cfg, cerr, sizeof(cerr)) < 0) {
		snap_fail(err, err_len, 0, "the snapshot's configuration: %s", cerr);
		goto out;
	}
	if (vmm_cpu_template_resolve(vmm, cerr, sizeof(cerr)) < 0) {
		snap_fail(err, err_len, 0, "the snapshot's CPU template: %s", cerr);
		goto out;
	}
	if (check_state(vmm, &rd, err, err_len))
		goto out;
	load_stamp(steps, LOAD_CONFIG, &t_ns);
	mem_fd = external ? -1 : open(a->mem_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (!external && (mem_fd < 0 || fstat(mem_fd, &st) < 0)) {
		snap_fail(err, err_len, 0, "cannot open mem_backend path '%s': %s", a->mem_path,
			  strerror(errno));
		goto out;
	}
	if (!external && (uint64_t)st.st_size != vmm->cfg.mem_mib << 20) {
		snap_fail(err, err_len, 0,
			  "memory file '%s' is %lld bytes; the snapshot's VM has %llu", a->mem_path,
			  (long long)st.st_size, (unsigned long long)(vmm->cfg.mem_mib << 20));
		goto out;
	}
	load_stamp(steps, LOAD_MEMFILE, &t_ns);
	/* From here KVM objects exist: a failure means this process is spent. */
	r = vmm_build_restored(vmm, a->uffd ? -1 : mem_fd);
	if (r) {
		snap_fail(
		    err, err_len, 0,
		    "cannot build the VM for the snapshot (exit code %d); the log has the cause",
		    r);
		goto failed;
	}
	if (external && uffd_external_start(&vmm->vm.mem, a->mem_path, &why) < 0) {
		r = snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT, "mem_backend Uffd: %s", why);
		goto failed;
	}
	if (a->uffd && !external) {
		vmm->uffd = calloc(1, sizeof(*vmm->uffd));
		if (!vmm->uffd ||
		    uffd_server_start(vmm->uffd, &vmm->vm.mem, mem_fd, a->ws_record, &why) < 0 ||
		    (a->ws_prefetch && uffd_prefetch(vmm->uffd, a->ws_prefetch, &why) < 0)) {
			r = snap_fail(err, err_len, EMBER_EXIT_SNAPSHOT, "mem_backend Uffd: %s: %s",
				      why, strerror(errno));
			goto failed;
		}
		mem_fd = -1; /* the handler keeps it */
	}
	load_stamp(steps, LOAD_BUILD, &t_ns);
	r = check_cpuid(vmm, &rd, err, err_len);
	if (!r)
		r = restore_all(vmm, &rd, a->clock_realtime, err, err_len);
	if (r)
		goto failed;
	load_stamp(steps, LOAD_RESTORE, &t_ns);
	vmm->vm.load_start_ns = load_ns;
	if (!a->resume)
		atomic_store(&vmm->vm.pause_requested, true);
	if (vm_start_vcpus(&vmm->vm) < 0) {
		r = snap_fail(err, err_len, EMBER_EXIT_ERROR, "cannot start the vCPUs");
		goto failed;
	}
	load_stamp(steps, LOAD_THREADS, &t_ns);
	load_log_breakdown(&vmm->vm, steps);
	vmm->state = a->resume ? VMM_RUNNING : VMM_PAUSED;
	vmm->has_snapshot_base = true;
	vmm->metrics.build_us = clock_now_us() - t0;
	log_info("snapshot loaded in %llu us (%s%s, %llu pages prefetched)",
		 (unsigned long long)vmm->metrics.build_us, a->resume ? "running" : "paused",
		 a->uffd ? ", memory by userfaultfd" : "",
		 (unsigned long long)(vmm->uffd ? vmm->uffd->prefetched : 0));
	metrics_vm_started(vmm);
	r = 0;
	goto out;
failed:
	vmm->state = VMM_START_FAILED;
	if (!r)
		r = EMBER_EXIT_SNAPSHOT;
out:
	if (mem_fd >= 0)
		close(mem_fd); /* the mappings keep the file */
	json_decref(cfg);
	snap_reader_free(&rd);
	free(buf);
	return r;
}
