// SPDX-License-Identifier: Apache-2.0
/*
 * faultfs: a FUSE file system with one file, /disk, backed by a real file,
 * that fails every read and write touching a configured byte range with
 * EIO. For fault tests: ember gets a drive whose host I/O fails part-way
 * through, as a disk with bad sectors would (device-mapper's `error` target
 * does the same, where the kernel has device-mapper).
 *
 *   faultfs MOUNTPOINT -o backing=FILE,bad_offset=N,bad_length=N [-o allow_other] -f
 *
 * The file is opened direct_io: every read and write the kernel gets from a
 * user of /disk reaches us unchanged (no page cache in between), so an
 * error is the answer to the request that touched the range, not to some
 * later write-back. Each refused request is logged on stderr as
 * "faultfs: read|write LEN at OFF: EIO".
 */
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char disk_path[] = "/disk";

static struct {
	char *backing;
	unsigned long long bad_offset, bad_length;
	int fd;
} fs;

static const struct fuse_opt fs_opts[] = {
	{ "backing=%s", offsetof(__typeof__(fs), backing), 0 },
	{ "bad_offset=%llu", offsetof(__typeof__(fs), bad_offset), 0 },
	{ "bad_length=%llu", offsetof(__typeof__(fs), bad_length), 0 },
	FUSE_OPT_END,
};

static int touches_bad(size_t len, off_t off)
{
	unsigned long long start = (unsigned long long)off, end = start + len;
	return len && start < fs.bad_offset + fs.bad_length && fs.bad_offset < end;
}

static int refuse(const char *what, size_t len, off_t off)
{
	fprintf(stderr, "faultfs: %s %zu at %lld: EIO\n", what, len, (long long)off);
	return -EIO;
}

static int ff_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, disk_path) != 0)
		return -ENOENT;
	struct stat b;
	if (fstat(fs.fd, &b) < 0)
		return -errno;
	st->st_mode = S_IFREG | 0666;
	st->st_nlink = 1;
	st->st_size = b.st_size;
	st->st_blocks = b.st_blocks;
	st->st_mtim = b.st_mtim;
	return 0;
}

static int ff_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, disk_path + 1, NULL, 0, 0);
	return 0;
}

static int ff_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, disk_path) != 0)
		return -ENOENT;
	fi->direct_io = 1;
	return 0;
}

static int ff_read(const char *path, char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	if (touches_bad(len, off))
		return refuse("read", len, off);
	ssize_t r = pread(fs.fd, buf, len, off);
	return r < 0 ? -errno : (int)r;
}

static int ff_write(const char *path, const char *buf, size_t len, off_t off,
		    struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	if (touches_bad(len, off))
		return refuse("write", len, off);
	ssize_t r = pwrite(fs.fd, buf, len, off);
	return r < 0 ? -errno : (int)r;
}

static int ff_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	return (datasync ? fdatasync(fs.fd) : fsync(fs.fd)) < 0 ? -errno : 0;
}

static const struct fuse_operations ff_ops = {
	.getattr = ff_getattr,
	.readdir = ff_readdir,
	.open = ff_open,
	.read = ff_read,
	.write = ff_write,
	.fsync = ff_fsync,
};

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	if (fuse_opt_parse(&args, &fs, fs_opts, NULL) < 0)
		return 1;
	if (!fs.backing) {
		fprintf(stderr, "faultfs: -o backing=FILE is required\n");
		return 1;
	}
	fs.fd = open(fs.backing, O_RDWR | O_CLOEXEC);
	if (fs.fd < 0) {
		fprintf(stderr, "faultfs: cannot open '%s': %s\n", fs.backing, strerror(errno));
		return 1;
	}
	int r = fuse_main(args.argc, args.argv, &ff_ops, NULL);
	fuse_opt_free_args(&args);
	return r;
}
