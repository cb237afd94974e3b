/*
 * The ActionLoop protocol floor: reads one activation line from stdin and answers each with a
 * fixed result line on fd 3, doing nothing else. Timed like ims-action by bench/run.py, it is what
 * the pipe round trip alone costs, the part of a warm activation no action can avoid.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    static char buf[1 << 16];
    static const char reply[] = "{\"statusCode\":200,\"body\":{}}\n";
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' && write(3, reply, sizeof reply - 1) < 0) return 1;
        }
    }
    return 0;
}
