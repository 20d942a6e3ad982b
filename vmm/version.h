/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ember's two version numbers. EMBER_VERSION is ember's own release.
 * EMBER_FIRECRACKER_VERSION is the Firecracker API level ember implements:
 * the info.version of the Firecracker swagger file ember's API was checked
 * against, reported wherever Firecracker reports its own version (the first
 * line of --version, GET /version's firecracker_version, GET /'s
 * vmm_version), so that clients which check a minimum Firecracker version
 * (Kata Containers' fc driver takes the second word of --version's first
 * line as a semantic version) see one they can compare.
 */
#ifndef EMBER_VERSION_H
#define EMBER_VERSION_H

#define EMBER_VERSION "0.1.0"
#define EMBER_FIRECRACKER_VERSION "1.17.0-dev"

#endif
