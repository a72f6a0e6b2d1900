// SPDX-License-Identifier: MIT
// Test helper: where the public TOML corpus lives, and a skip when it is absent.
#pragma once

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

namespace cfgreg_test {

/// The corpus folder, fixed when the build is configured (CMake cache variable
/// CFGREG_CORPUS_DIR, by default ../shared/corpus beside the project).
inline const std::string corpus = CFGREG_CORPUS_DIR;

/// True when `corpus/sub` is a folder. Otherwise warns with a line that ctest turns
/// into a skip (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt); the caller then returns.
inline bool corpus_present(const std::string& sub) {
    const std::string dir = corpus + "/" + sub;
    if (std::filesystem::is_directory(dir)) return true;
    WARN("CFGREG_TEST_SKIPPED: this test reads the public TOML corpus, and "
         << dir << " is missing; set the CMake cache variable CFGREG_CORPUS_DIR to the folder"
         << " holding toml-test/ and real/");
    return false;
}

}  // namespace cfgreg_test
