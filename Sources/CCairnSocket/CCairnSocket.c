#define _GNU_SOURCE
#include <stddef.h>
#include <sys/socket.h>
#include "CCairnSocket.h"

// The same layout as glibc's struct mmsghdr, so the kernel reads and fills these.
_Static_assert(sizeof(CCairnSocket_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr layout");
_Static_assert(offsetof(CCairnSocket_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len), "mmsghdr layout");

const int CCairnSocket_MSG_WAITFORONE = MSG_WAITFORONE;

int CCairnSocket_recvmmsg(int fd, CCairnSocket_mmsghdr *messages, unsigned int count, int flags, struct timespec *timeout) {
    return recvmmsg(fd, (struct mmsghdr *)messages, count, flags, timeout);
}

int CCairnSocket_sendmmsg(int fd, CCairnSocket_mmsghdr *messages, unsigned int count, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)messages, count, flags);
}
