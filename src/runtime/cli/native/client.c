/*
 * The `runtime` command's front: a test suite calls `runtime reset <id> [NAME]` (and often
 * `runtime state <id>`) before every test, and Node takes 50-90 ms here just to start, more
 * than the reset itself. This program answers those two commands, in their plain forms, by asking
 * the container's monitor over its control socket (one JSON line each way, see
 * monitor/protocol.ts), and prints what the Node CLI prints. The monitor does all the work and
 * renders every message; this side only builds the request and copies the answer out.
 *
 * Anything else it hands to the Node CLI unchanged (execv, same argv, same environment): other
 * commands, other flags, --help, a configuration file, no live monitor (a stopped container is
 * restored by the CLI), not root, an id or snapshot name it does not take as given. Nothing is
 * decided here that the Node CLI would decide differently.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#ifndef DEFAULT_STATE_ROOT
#error "build with -DDEFAULT_STATE_ROOT=\"...\" (scripts/build-client.sh reads config/defaults.json)"
#endif
#ifndef NODE_BINARY
#define NODE_BINARY "node"
#endif

/* As the Node CLI's sendControl. */
#ifndef ANSWER_TIMEOUT_MS
#define ANSWER_TIMEOUT_MS 120000
#endif
#define MAX_ANSWER (16 << 20)

static char **original_argv;

/* Runs the Node CLI with the same arguments: <package>/bin/runtime.js beside <package>/dist/bin/. */
static _Noreturn void fall_back(void) {
  char self[PATH_MAX];
  char script[PATH_MAX + 32];
  if (!realpath("/proc/self/exe", self)) {
    perror("runtime: cannot find its own path");
    exit(1);
  }
  char *slash = strrchr(self, '/');
  for (int up = 0; up < 2 && slash; up++) {
    *slash = '\0';
    slash = strrchr(self, '/');
  }
  if (!slash) {
    fprintf(stderr, "runtime: cannot find bin/runtime.js from %s\n", self);
    exit(1);
  }
  *slash = '\0';
  snprintf(script, sizeof script, "%s/bin/runtime.js", self);

  int argc = 0;
  while (original_argv[argc]) argc++;
  char **args = calloc((size_t)argc + 2, sizeof *args);
  if (!args) exit(1);
  args[0] = "node";
  args[1] = script;
  for (int i = 1; i < argc; i++) args[i + 1] = original_argv[i];
  if (NODE_BINARY[0] == '/') execv(NODE_BINARY, args);
  execvp("node", args);
  fprintf(stderr, "runtime: cannot run node: %s\n", strerror(errno));
  exit(1);
}

/* --- the little JSON this needs ------------------------------------------------------------- */

struct buffer {
  char *data;
  size_t length, capacity;
};

static void append(struct buffer *b, const char *text, size_t length) {
  if (b->length + length + 1 > b->capacity) {
    size_t capacity = b->capacity ? b->capacity * 2 : 256;
    while (capacity < b->length + length + 1) capacity *= 2;
    char *grown = realloc(b->data, capacity);
    if (!grown) exit(1);
    b->data = grown;
    b->capacity = capacity;
  }
  memcpy(b->data + b->length, text, length);
  b->length += length;
  b->data[b->length] = '\0';
}

static void appendf(struct buffer *b, const char *format, ...) {
  char text[256];
  va_list args;
  va_start(args, format);
  int length = vsnprintf(text, sizeof text, format, args);
  va_end(args);
  if (length < 0 || (size_t)length >= sizeof text) exit(1);
  append(b, text, (size_t)length);
}

/* A JSON string literal of text, which is valid UTF-8 (checked by the caller). */
static void append_json_string(struct buffer *b, const char *text) {
  append(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    if (*p == '"' || *p == '\\') {
      char escaped[2] = {'\\', (char)*p};
      append(b, escaped, 2);
    } else if (*p < 0x20) {
      appendf(b, "\\u%04x", *p);
    } else {
      append(b, (const char *)p, 1);
    }
  }
  append(b, "\"", 1);
}

static const char *skip_space(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  return p;
}

static void put_utf8(struct buffer *out, unsigned long code) {
  char bytes[4];
  size_t n;
  if (code < 0x80) {
    bytes[0] = (char)code;
    n = 1;
  } else if (code < 0x800) {
    bytes[0] = (char)(0xc0 | (code >> 6));
    bytes[1] = (char)(0x80 | (code & 0x3f));
    n = 2;
  } else if (code < 0x10000) {
    bytes[0] = (char)(0xe0 | (code >> 12));
    bytes[1] = (char)(0x80 | ((code >> 6) & 0x3f));
    bytes[2] = (char)(0x80 | (code & 0x3f));
    n = 3;
  } else {
    bytes[0] = (char)(0xf0 | (code >> 18));
    bytes[1] = (char)(0x80 | ((code >> 12) & 0x3f));
    bytes[2] = (char)(0x80 | ((code >> 6) & 0x3f));
    bytes[3] = (char)(0x80 | (code & 0x3f));
    n = 4;
  }
  append(out, bytes, n);
}

static const char *read_hex4(const char *p, unsigned long *value) {
  *value = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (digit < 0) return NULL;
    *value = *value * 16 + (unsigned long)digit;
  }
  return p + 4;
}

/* Reads the string literal at p (its opening quote); decoded into out when out is not NULL. */
static const char *read_string(const char *p, struct buffer *out) {
  if (*p != '"') return NULL;
  for (p++; *p != '"'; p++) {
    if (*p == '\0') return NULL;
    if (*p != '\\') {
      if (out) append(out, p, 1);
      continue;
    }
    p++;
    const char *simple = strchr("\"\\/bfnrt", *p);
    if (*p && simple) {
      static const char decoded[] = "\"\\/\b\f\n\r\t";
      if (out) append(out, &decoded[simple - "\"\\/bfnrt"], 1);
    } else if (*p == 'u') {
      unsigned long code;
      if (!(p = read_hex4(p + 1, &code))) return NULL;
      if (code >= 0xd800 && code < 0xdc00 && p[0] == '\\' && p[1] == 'u') {
        unsigned long low;
        const char *after = read_hex4(p + 2, &low);
        if (after && low >= 0xdc00 && low < 0xe000) {
          code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          p = after;
        }
      }
      if (out) put_utf8(out, code);
      p--;
    } else {
      return NULL;
    }
  }
  return p + 1;
}

/* Skips any JSON value at p; NULL when it is not one. */
static const char *skip_value(const char *p, int depth) {
  p = skip_space(p);
  if (depth > 64) return NULL;
  if (*p == '"') return read_string(p, NULL);
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    p = skip_space(p + 1);
    if (*p == close) return p + 1;
    for (;;) {
      if (close == '}') {
        if (!(p = read_string(skip_space(p), NULL))) return NULL;
        p = skip_space(p);
        if (*p++ != ':') return NULL;
      }
      if (!(p = skip_value(p, depth + 1))) return NULL;
      p = skip_space(p);
      if (*p == close) return p + 1;
      if (*p++ != ',') return NULL;
    }
  }
  const char *start = p;
  while (*p && strchr("-+.0123456789eEtruefalsn", *p)) p++;
  return p > start ? p : NULL;
}

/* The answer's top-level fields this side reads. */
struct answer {
  int ok;   /* 1, 0, or -1 when absent */
  long pid; /* 0 when absent */
  bool has_display;
  struct buffer display;
};

static bool parse_answer(const char *text, struct answer *answer) {
  memset(answer, 0, sizeof *answer);
  answer->ok = -1;
  const char *p = skip_space(text);
  if (*p++ != '{') return false;
  p = skip_space(p);
  if (*p == '}') return true;
  for (;;) {
    struct buffer key = {0};
    p = read_string(skip_space(p), &key);
    if (!p || !key.data) return false;
    p = skip_space(p);
    if (*p++ != ':') return false;
    p = skip_space(p);
    if (strcmp(key.data, "ok") == 0 && strncmp(p, "true", 4) == 0) {
      answer->ok = 1;
      p += 4;
    } else if (strcmp(key.data, "ok") == 0 && strncmp(p, "false", 5) == 0) {
      answer->ok = 0;
      p += 5;
    } else if (strcmp(key.data, "pid") == 0 && *p >= '1' && *p <= '9') {
      char *end;
      answer->pid = strtol(p, &end, 10);
      p = end;
    } else if (strcmp(key.data, "display") == 0 && *p == '"') {
      answer->has_display = true;
      append(&answer->display, "", 0);
      if (!(p = read_string(p, &answer->display))) return false;
    } else if (!(p = skip_value(p, 0))) {
      return false;
    }
    free(key.data);
    p = skip_space(p);
    if (*p == '}') return true;
    if (*p++ != ',') return false;
  }
}

/* --- asking the monitor --------------------------------------------------------------------- */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Sends the request and reads the answer into `answer` (the whole text, until the monitor closes
 * the connection). Returns false, with nothing sent, when no monitor listens (fall back); exits
 * with the Node CLI's message when the monitor does not answer in time.
 */
static bool ask(const char *state_dir, const struct buffer *request, struct buffer *answer) {
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  if ((size_t)snprintf(address.sun_path, sizeof address.sun_path, "%s/monitor.sock", state_dir) >= sizeof address.sun_path) return false;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
    close(fd);
    return false;
  }
  for (size_t sent = 0; sent < request->length;) {
    ssize_t n = send(fd, request->data + sent, request->length - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      fprintf(stderr, "runtime: cannot ask the monitor of %s: %s\n", state_dir, strerror(errno));
      exit(1);
    }
    sent += (size_t)n;
  }
  long long deadline = now_ms() + ANSWER_TIMEOUT_MS;
  append(answer, "", 0);
  for (;;) {
    struct pollfd poll_fd = {.fd = fd, .events = POLLIN};
    long long left = deadline - now_ms();
    int ready = left > 0 ? poll(&poll_fd, 1, (int)left) : 0;
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      fprintf(stderr, "runtime: the monitor did not answer within %g s\n  hint: read %s/monitor.log\n", ANSWER_TIMEOUT_MS / 1000.0, state_dir);
      exit(1);
    }
    char chunk[65536];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (answer->length + (size_t)n > MAX_ANSWER) break;
    append(answer, chunk, (size_t)n);
  }
  close(fd);
  return true;
}

/* --- the commands --------------------------------------------------------------------------- */

static bool valid_id(const char *id) {
  size_t length = strlen(id);
  if (length == 0 || length > 200 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0 || id[0] == '-') return false;
  return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-.") == length;
}

/* Snapshot names are checked by the monitor; this side only passes printable ASCII. */
static bool plain_text(const char *text) {
  if (!*text || text[0] == '-') return false;
  for (const unsigned char *p = (const unsigned char *)text; *p; p++)
    if (*p < 0x20 || *p > 0x7e) return false;
  return true;
}

static bool digits(const char *text) {
  return *text && strspn(text, "0123456789") == strlen(text) && strlen(text) <= 6;
}

/* Prints the answer as the Node CLI would; -1 for a state answer this side cannot print (hand over). */
static int finish(const char *text, const char *what, const char *id, const char *name, const char *pid_file, long long started) {
  struct answer answer;
  /* Closed without a word: the monitor ended before it answered; the Node CLI starts a new one. */
  if (text[0] == '\0') return -1;
  bool understood = parse_answer(text, &answer) && answer.ok >= 0;
  /* A monitor older than this side answers a state request with an error and no display. */
  if (strcmp(what, "state") == 0 && (!understood || !answer.has_display)) return -1;
  if (!understood) {
    fprintf(stderr,
            "runtime: the monitor's answer was not understood: not JSON: %.200s\n"
            "  hint: the runtime that sent it may be of another version; restart the container's monitor\n",
            text);
    return 1;
  }
  if (!answer.ok) {
    if (!answer.has_display) {
      fprintf(stderr, "runtime: the %s failed (the monitor gave no message)\n  hint: read its log, monitor.log beside the container's state\n", what);
      return 1;
    }
    fprintf(stderr, "runtime: %s\n", answer.display.data);
    return 1;
  }
  if (strcmp(what, "state") == 0) {
    printf("%s\n", answer.display.data);
    return fflush(stdout) == 0 ? 0 : 1;
  }
  if (answer.pid <= 0) {
    fprintf(stderr, "runtime: the monitor's answer was not understood: no pid in %.200s\n", text);
    return 1;
  }
  if (pid_file) {
    int fd = open(pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    char text_pid[32];
    int length = snprintf(text_pid, sizeof text_pid, "%ld", answer.pid);
    if (fd < 0 || write(fd, text_pid, (size_t)length) != length || close(fd) != 0) {
      fprintf(stderr, "runtime: cannot write the pid file %s: %s\n", pid_file, strerror(errno));
      return 1;
    }
  }
  fprintf(stderr, "reset %s%s%s: init pid %ld (%lld ms)\n", id, name ? " to " : "", name ? name : "", answer.pid, now_ms() - started);
  return 0;
}

int main(int argc, char **argv) {
  original_argv = argv;
  long long started = now_ms();
  const char *root = getenv("RUNTIME_ROOT");
  /* The Node CLI refuses an empty one. */
  if (root && !*root) fall_back();
  int i = 1;
  /* Global flags: only --root; any other goes to the Node CLI. */
  while (i < argc && argv[i][0] == '-') {
    if (strcmp(argv[i], "--root") == 0 && i + 1 < argc && argv[i + 1][0] != '\0') {
      root = argv[i + 1];
      i += 2;
    } else {
      fall_back();
    }
  }
  if (i >= argc) fall_back();
  const char *command = argv[i++];
  bool reset = strcmp(command, "reset") == 0;
  if (!reset && strcmp(command, "state") != 0) fall_back();

  /* A configuration file may move the state root: the Node CLI reads it. */
  if (!root) {
    struct stat st;
    if (getenv("RUNTIME_CONFIG") || stat("/etc/runtime/config.json", &st) == 0) fall_back();
    root = DEFAULT_STATE_ROOT;
  }
  /* Not root: the socket's directory is root's alone, so connecting fails and the Node CLI says why. */

  const char *positionals[2] = {NULL, NULL};
  int count = 0;
  const char *pid_file = NULL;
  const char *standbys = NULL;
  bool no_standby = false, lazy = false, no_lazy = false;
  bool tcp_established = false, ext_unix_sk = false, shell_job = false, file_locks = false;
  for (; i < argc; i++) {
    const char *arg = argv[i];
    bool *flag = NULL;
    if (arg[0] != '-') {
      if (count == 2) fall_back();
      positionals[count++] = arg;
      continue;
    }
    if (!reset) fall_back();
    if (strcmp(arg, "--pid-file") == 0 && !pid_file && i + 1 < argc && argv[i + 1][0] && argv[i + 1][0] != '-') {
      pid_file = argv[++i];
      continue;
    }
    if (strcmp(arg, "--standbys") == 0 && !standbys && i + 1 < argc && digits(argv[i + 1])) {
      standbys = argv[++i];
      continue;
    }
    if (strcmp(arg, "--no-standby") == 0) flag = &no_standby;
    else if (strcmp(arg, "--lazy-pages") == 0) flag = &lazy;
    else if (strcmp(arg, "--no-lazy-pages") == 0) flag = &no_lazy;
    else if (strcmp(arg, "--tcp-established") == 0) flag = &tcp_established;
    else if (strcmp(arg, "--ext-unix-sk") == 0) flag = &ext_unix_sk;
    else if (strcmp(arg, "--shell-job") == 0) flag = &shell_job;
    else if (strcmp(arg, "--file-locks") == 0) flag = &file_locks;
    if (!flag || *flag) fall_back();
    *flag = true;
  }
  if (lazy && no_lazy) fall_back();
  if (count < 1 || !valid_id(positionals[0])) fall_back();
  if (!reset && count != 1) fall_back();
  const char *id = positionals[0];
  const char *name = positionals[1];
  if (name && !plain_text(name)) fall_back();

  char state_dir[PATH_MAX];
  if ((size_t)snprintf(state_dir, sizeof state_dir, "%s/%s", root, id) >= sizeof state_dir) fall_back();

  /* The request the Node CLI sends (reset-by-monitor.ts), or a state request. */
  struct buffer request = {0};
  if (reset) {
    append(&request, "{\"op\":\"reset\",\"reset\":{", 23);
    if (name) {
      append(&request, "\"name\":", 7);
      append_json_string(&request, name);
      append(&request, ",", 1);
    }
    if (no_standby) append(&request, "\"standby\":false,", 16);
    if (standbys) appendf(&request, "\"standbys\":%ld,", strtol(standbys, NULL, 10));
    append(&request, "\"criu\":{", 8);
    const char *separator = "";
    const struct {
      bool set;
      const char *json;
    } criu[] = {
        {tcp_established, "\"tcpEstablished\":true"}, {ext_unix_sk, "\"extUnixSk\":true"}, {shell_job, "\"shellJob\":true"},
        {file_locks, "\"fileLocks\":true"},          {lazy, "\"lazyPages\":true"},     {no_lazy, "\"lazyPages\":false"},
    };
    for (size_t k = 0; k < sizeof criu / sizeof criu[0]; k++) {
      if (!criu[k].set) continue;
      appendf(&request, "%s%s", separator, criu[k].json);
      separator = ",";
    }
    append(&request, "}}}\n", 4);
  } else {
    append(&request, "{\"op\":\"state\"}\n", 15);
  }

  struct buffer answer = {0};
  if (!ask(state_dir, &request, &answer)) fall_back();
  int code = finish(answer.data, reset ? "reset" : "state", id, name, pid_file, started);
  /* A state answer this side does not know how to print (an older monitor): the Node CLI reads it. */
  if (code < 0) fall_back();
  return code;
}
