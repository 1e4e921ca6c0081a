// CPU time of processes and threads from /proc, for whole-run drivers that
// want to say where a machine's CPU went (PostgreSQL backends by role, the
// service's threads) without a profiler. Linux only; clock-tick resolution
// (usually 10 ms), so read deltas over windows of hundreds of ms or more.
#pragma once

#include <dirent.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>

namespace trickle::bench {

// utime+stime of one /proc/.../stat file in ms, and its parent pid; the
// reaped children's time (cutime+cstime) too. False when unreadable (gone).
struct ProcStat {
  int ppid = 0;
  double cpu_ms = 0;
  double children_cpu_ms = 0;
};

inline bool ReadProcStat(const std::string& path, ProcStat* out) {
  std::ifstream f(path);
  std::string line;
  if (!std::getline(f, line)) return false;
  // The command name is in parentheses and may contain spaces: fields
  // restart after the last ')'.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  // Fields 3.. of proc(5): state ppid pgrp session tty tpgid flags minflt
  // cminflt majflt cmajflt utime stime cutime cstime.
  std::string v[15];
  for (auto& x : v) {
    if (!(rest >> x)) return false;
  }
  static const double ms_per_tick = 1000.0 / sysconf(_SC_CLK_TCK);
  out->ppid = std::stoi(v[1]);
  out->cpu_ms = (std::stod(v[11]) + std::stod(v[12])) * ms_per_tick;
  out->children_cpu_ms = (std::stod(v[13]) + std::stod(v[14])) * ms_per_tick;
  return true;
}

// pid -> CPU ms of every live child of `parent`.
inline std::map<int, double> ChildrenCpu(int parent) {
  std::map<int, double> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    int pid = atoi(e->d_name);
    if (pid <= 0) continue;
    ProcStat s;
    if (ReadProcStat(std::string("/proc/") + e->d_name + "/stat", &s) && s.ppid == parent) {
      out[pid] = s.cpu_ms;
    }
  }
  closedir(d);
  return out;
}

// tid -> CPU ms of every live thread of this process.
inline std::map<int, double> ThreadsCpu() {
  std::map<int, double> out;
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    int tid = atoi(e->d_name);
    if (tid <= 0) continue;
    ProcStat s;
    if (ReadProcStat(std::string("/proc/self/task/") + e->d_name + "/stat", &s))
      out[tid] = s.cpu_ms;
  }
  closedir(d);
  return out;
}

// Busy and total jiffies of the whole machine (/proc/stat "cpu" line).
inline std::pair<uint64_t, uint64_t> MachineJiffies() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  uint64_t v[10] = {};
  f >> cpu;
  for (auto& x : v) f >> x;
  uint64_t idle = v[3] + v[4];
  uint64_t total = 0;
  for (int i = 0; i < 8; ++i) total += v[i];
  return {total - idle, total};
}

inline std::string LoadAverage() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

}  // namespace trickle::bench
