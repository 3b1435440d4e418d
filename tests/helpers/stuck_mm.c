/*
 * A process whose memory-map lock is stuck, as a process in uninterruptible
 * sleep on a hung FUSE or NFS mount leaves it: reading its /proc/PID/cmdline
 * then blocks in the kernel for as long as the mount hangs.
 *
 *   stuck_mm FILE GO READY
 *
 * FILE is on a FUSE mount whose server never answers a read. One thread reads
 * the mapped FILE through /proc/self/mem: the kernel holds the memory-map lock
 * for reading while it waits for the page (unlike a plain page fault, which
 * drops it). When a byte arrives on the FIFO GO, a second thread asks for the
 * lock for writing (mmap) and queues behind the reader. From then on every
 * new reader of the lock, /proc/PID/cmdline included, waits behind that
 * writer. READY is created once the writer sleeps in the kernel; whoever
 * writes to GO must first see the read arrive at the FUSE server.
 *
 * Only raw system calls after the first thread starts: malloc or stdio could
 * need the lock themselves.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile char *mapped;
static int go_fd;
static volatile pid_t writer_tid;

static void *read_mapped_file(void *unused) {
    (void)unused;
    int mem = open("/proc/self/mem", O_RDONLY);
    char byte;
    if (mem < 0 || pread(mem, &byte, 1, (off_t)(uintptr_t)mapped) != 1)
        return NULL; /* the mount was released with an error: expected */
    return NULL;
}

static void *ask_for_write_lock(void *unused) {
    (void)unused;
    writer_tid = (pid_t)syscall(SYS_gettid);
    char byte;
    if (read(go_fd, &byte, 1) != 1)
        return NULL;
    mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return NULL;
}

/* The state letter of thread `tid` ('D': uninterruptible or killable sleep,
 * as in waiting for the memory-map lock). */
static char state_of(pid_t tid) {
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return '?';
    ssize_t n = read(fd, stat, sizeof stat - 1);
    close(fd);
    if (n <= 0)
        return '?';
    stat[n] = 0;
    char *close_paren = strrchr(stat, ')');
    return close_paren && close_paren[1] == ' ' ? close_paren[2] : '?';
}


int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: stuck_mm FILE GO READY\n");
        return 2;
    }
    /* A process asleep in the kernel acts on SIGTERM only once it wakes: it
     * stays through a shutdown's grace period, and so does this one. */
    signal(SIGTERM, SIG_IGN);
    int file = open(argv[1], O_RDONLY);
    go_fd = open(argv[2], O_RDWR); /* O_RDWR: opening a FIFO this way never blocks */
    if (file < 0 || go_fd < 0) {
        perror("stuck_mm: open");
        return 1;
    }
    mapped = mmap(NULL, 4096, PROT_READ, MAP_SHARED, file, 0);
    if (mapped == MAP_FAILED) {
        perror("stuck_mm: mmap");
        return 1;
    }
    pthread_t reader, writer;
    if (pthread_create(&writer, NULL, ask_for_write_lock, NULL) != 0 ||
        pthread_create(&reader, NULL, read_mapped_file, NULL) != 0) {
        perror("stuck_mm: pthread_create");
        return 1;
    }
    struct timespec poll = {0, 1000000};
    while (writer_tid == 0 || state_of(writer_tid) != 'D')
        nanosleep(&poll, NULL);
    int ready = open(argv[3], O_WRONLY | O_CREAT, 0644);
    if (ready >= 0)
        close(ready);
    for (;;)
        pause();
}
