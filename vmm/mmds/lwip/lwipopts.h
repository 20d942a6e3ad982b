/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lwIP's configuration for the MMDS network stack: the raw API only, no OS
 * (NO_SYS: lwIP runs on ember's VMM thread, its timers driven from the
 * event loop), IPv4, ARP and TCP, nothing else; all memory in fixed pools
 * and one fixed heap, so a guest can exhaust them but never make ember
 * allocate more. Checksums the guest computes are not checked: with
 * checksum offload negotiated the guest leaves TCP's partial.
 */
#ifndef EMBER_LWIPOPTS_H
#define EMBER_LWIPOPTS_H

#define NO_SYS 1
#define SYS_LIGHTWEIGHT_PROT 0
#define LWIP_SOCKET 0
#define LWIP_NETCONN 0
#define LWIP_IPV4 1
#define LWIP_IPV6 0
#define LWIP_ARP 1
#define LWIP_ETHERNET 1
#define LWIP_ICMP 1
#define LWIP_TCP 1
#define LWIP_UDP 0
#define LWIP_RAW 0
#define LWIP_DHCP 0
#define LWIP_AUTOIP 0
#define LWIP_IGMP 0
#define LWIP_DNS 0
#define LWIP_STATS 0
#define LWIP_NETIF_HOSTNAME 0
#define IP_REASSEMBLY 0
#define IP_FRAG 0
#define ARP_QUEUEING 1
#define ETHARP_SUPPORT_STATIC_ENTRIES 0
#define LWIP_SINGLE_NETIF 0

/* Memory: the heap holds outgoing segments; the pools hold the rest. */
#define MEM_LIBC_MALLOC 0
#define MEMP_MEM_MALLOC 0
#define MEM_ALIGNMENT 8
#define MEM_SIZE (256 * 1024)
#define MEMP_NUM_PBUF 64
#define MEMP_NUM_TCP_PCB 96 /* per interface: MMDS_HALF_OPEN + MMDS_IFACE_CONNS, and closing ones */
#define MEMP_NUM_TCP_PCB_LISTEN 1 /* port 80, on every MMDS interface */
#define MEMP_NUM_TCP_SEG 256
#define MEMP_NUM_ARP_QUEUE 32
#define PBUF_POOL_SIZE 64
#define PBUF_POOL_BUFSIZE 1536
#define ARP_TABLE_SIZE 16

/* TCP: a standard Ethernet MSS, a window of a few segments, and a send
 * buffer large enough that most answers go out in one write. */
#define TCP_MSS 1460
#define TCP_WND (8 * TCP_MSS)
#define TCP_SND_BUF (16 * TCP_MSS)
#define TCP_SND_QUEUELEN 64
/* No listen backlog: a SYN flood then recycles the oldest half-open
 * connections (lwIP's tcp_kill_prio) instead of shutting the door until
 * they time out. */
#define TCP_LISTEN_BACKLOG 0
#define LWIP_TCP_KEEPALIVE 0
#define TCP_QUEUE_OOSEQ 0

#define CHECKSUM_CHECK_IP 0
#define CHECKSUM_CHECK_TCP 0
#define CHECKSUM_CHECK_ICMP 0

#define LWIP_NETIF_LINK_CALLBACK 0
#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_HAVE_LOOPIF 0
#define LWIP_NETIF_LOOPBACK 0

/* Answers go out on the interface the request came in on: every MMDS
 * interface has the same address, so routing by destination alone would
 * send a reset or an ICMP reply to the first one. Connections carry their
 * interface (tcp_bind_netif on each listener). */
struct netif;
struct ip4_addr;
struct netif *mmds_lwip_route(const struct ip4_addr *dest);
#define LWIP_HOOK_IP4_ROUTE_SRC(src, dest)                                                         \
	((void)(src), ip_current_input_netif() ? ip_current_input_netif() : mmds_lwip_route(dest))

/* Each SYN for the listener: an interface keeps at most MMDS_HALF_OPEN
 * half-open connections (its oldest goes), so one guest interface's SYN
 * flood cannot take the pool from another's (net.c). */
struct tcp_pcb;
signed char mmds_lwip_inpacket(struct tcp_pcb *pcb);
#define LWIP_HOOK_TCP_INPACKET_PCB(pcb, hdr, optlen, opt1len, opt2, p) mmds_lwip_inpacket(pcb)

/* Invariant checks abort in lwIP's default port: a guest must never be
 * able to end ember, so they are off, as in lwIP's own release setups. */
#define LWIP_NOASSERT 1

#endif
