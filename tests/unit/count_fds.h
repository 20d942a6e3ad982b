/* SPDX-License-Identifier: Apache-2.0 */
/* Open file descriptors of this process, for tests that check for leaks. */
#ifndef EMBER_TEST_COUNT_FDS_H
#define EMBER_TEST_COUNT_FDS_H

#include <dirent.h>

static inline unsigned int count_fds(void)
{
	unsigned int n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

#endif
