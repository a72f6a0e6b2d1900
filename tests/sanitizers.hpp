// SPDX-License-Identifier: MIT
// Which sanitizer a test runs under, so that slow runs can scale their iteration counts.
#pragma once

// CFGREG_TEST_SANITIZED is 1 under ThreadSanitizer or AddressSanitizer, else 0;
// CFGREG_TEST_TSAN is 1 under ThreadSanitizer only, else 0.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define CFGREG_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define CFGREG_TEST_SANITIZED 1
#endif
#endif
#ifndef CFGREG_TEST_SANITIZED
#define CFGREG_TEST_SANITIZED 0
#endif

#if defined(__SANITIZE_THREAD__)
#define CFGREG_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CFGREG_TEST_TSAN 1
#endif
#endif
#ifndef CFGREG_TEST_TSAN
#define CFGREG_TEST_TSAN 0
#endif
