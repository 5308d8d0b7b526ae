/* Sends SIGINT and SIGTERM to its own process right before the Nth call, counted
 * from the process's first write to stdout or stderr, of any of the functions a
 * script may block in or print with. Loaded with LD_PRELOAD by tests/test_stops.py:
 *
 *     MULTICAST_TEST_STOP_AT=N LD_PRELOAD=stop_before_call.so python3 SCRIPT ...
 *
 * A signal that lands there is the one Python sees only after the call returns:
 * a script whose blocking waits a signal does not wake never stops. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long countdown = -1;  /* -1: counting has not started */

#define REAL(name) static __typeof__(name) *real; if (!real) real = dlsym(RTLD_NEXT, #name)

/* Says on stderr where it stopped (the test reads it), then sends both signals. */
static void stop_before(const char *call) {
    static const char said[] = "stop_before_call: SIGINT and SIGTERM before ";
    static __typeof__(write) *real_write;
    if (!real_write) real_write = dlsym(RTLD_NEXT, "write");
    real_write(2, said, sizeof said - 1);
    real_write(2, call, strlen(call));
    real_write(2, "\n", 1);
    kill(getpid(), SIGINT);
    kill(getpid(), SIGTERM);
}

#define before_call() do { if (countdown > 0 && --countdown == 0) stop_before(__func__); } while (0)

ssize_t write(int fd, const void *data, size_t size) {
    REAL(write);
    if (fd == 1 || fd == 2) {
        if (countdown == -1) {  /* the first line: the script is ready; count from here */
            const char *n = getenv("MULTICAST_TEST_STOP_AT");
            countdown = n ? atol(n) + 1 : 0;
        }
        before_call();
    }
    return real(fd, data, size);
}

ssize_t recvfrom(int fd, void *buffer, size_t size, int flags, struct sockaddr *address,
                 socklen_t *length) {
    REAL(recvfrom);
    before_call();
    return real(fd, buffer, size, flags, address, length);
}

ssize_t recvmsg(int fd, struct msghdr *message, int flags) {
    REAL(recvmsg);
    before_call();
    return real(fd, message, flags);
}

ssize_t sendto(int fd, const void *data, size_t size, int flags, const struct sockaddr *to,
               socklen_t length) {
    REAL(sendto);
    before_call();
    return real(fd, data, size, flags, to, length);
}

int select(int n, fd_set *readable, fd_set *writable, fd_set *failed, struct timeval *timeout) {
    REAL(select);
    before_call();
    return real(n, readable, writable, failed, timeout);
}

int poll(struct pollfd *fds, nfds_t n, int timeout) {
    REAL(poll);
    before_call();
    return real(fds, n, timeout);
}

int epoll_wait(int epfd, struct epoll_event *events, int most, int timeout) {
    REAL(epoll_wait);
    before_call();
    return real(epfd, events, most, timeout);
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request,
                    struct timespec *remain) {
    REAL(clock_nanosleep);
    before_call();
    return real(clock, flags, request, remain);
}
