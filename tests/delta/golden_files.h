// Golden-file helpers shared by the plan and rewrite golden tests.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace trickle::delta::testing {

// The .sql files of `dir`, sorted.
inline std::vector<std::string> SqlFilesIn(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".sql") files.push_back(e.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// A gtest parameter name for a golden file: its name without ".sql", with
// every character other than a letter or digit replaced by '_'.
inline std::string GoldenTestName(const std::string& file) {
  std::string n = file.substr(0, file.size() - 4);
  for (char& c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return n;
}

// The text of a file ("" when it cannot be read).
inline std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// With TRICKLE_UPDATE_GOLDEN set, writes `rendered` to the golden file and
// returns true (the caller skips the comparison); else returns false.
inline bool UpdateGolden(const std::string& path, const std::string& rendered) {
  if (std::getenv("TRICKLE_UPDATE_GOLDEN") == nullptr) return false;
  std::ofstream(path) << rendered;
  return true;
}

inline constexpr char kGoldenDiffers[] =
    " differs; if the change is intended, rerun with TRICKLE_UPDATE_GOLDEN=1";

}  // namespace trickle::delta::testing
