// recvmmsg and sendmmsg with their message type, which glibc declares only under _GNU_SOURCE (and so Swift's Glibc
// module does not import). Used by CairnDNS's UDP threads.
#ifndef CCAIRN_SOCKET_H
#define CCAIRN_SOCKET_H

#include <sys/socket.h>
#include <time.h>

typedef struct {
    struct msghdr msg_hdr;
    unsigned int msg_len;
} CCairnSocket_mmsghdr;

/// MSG_WAITFORONE: after the first message, take what else is queued without waiting.
extern const int CCairnSocket_MSG_WAITFORONE;

int CCairnSocket_recvmmsg(int fd, CCairnSocket_mmsghdr *messages, unsigned int count, int flags, struct timespec *timeout);
int CCairnSocket_sendmmsg(int fd, CCairnSocket_mmsghdr *messages, unsigned int count, int flags);

#endif
