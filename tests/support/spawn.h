// Starting child processes from tests without leaking the test's file descriptors into them. A child that inherits a
// descriptor keeps what it refers to alive after the test is gone: a long-lived server (PostgreSQL, a collector, an
// agent, ClickHouse) holding the descriptor of a file someone flock'ed keeps that lock after the test dies. Every
// helper that forks calls CloseInheritedDescriptors() in the child, after setting up stdio and before exec.
#ifndef FERRY_TESTS_SUPPORT_SPAWN_H_
#define FERRY_TESTS_SUPPORT_SPAWN_H_

#include <string>

namespace ferry::testsupport {

// Closes every descriptor >= 3 of the calling process (close_range; a loop up to the descriptor limit where that is
// missing). Async-signal-safe: meant for the child between fork() and exec().
void CloseInheritedDescriptors();

// Runs a command line through /bin/sh with only stdin, stdout and stderr inherited; returns its exit status (-1 when
// it could not run or did not exit normally) and puts its stdout in *out.
int RunShell(const std::string& cmd, std::string* out);

}  // namespace ferry::testsupport

#endif  // FERRY_TESTS_SUPPORT_SPAWN_H_
