/* Peak arithmetic rate of one CPU core, per instruction set: compiled and run by benchmarks/peak.py.
 *
 *     gcc -O2 -march=native -o peak benchmarks/peak_kernels.c && ./peak list && ./peak avx512_bf16 0.5
 *
 * Each kernel keeps enough independent accumulators in registers to cover the instruction's latency on
 * every pipe, so it runs at the issue rate of its instruction: vfmadd231ps (AVX2, AVX-512), vdpbf16ps
 * (AVX-512 BF16) or tdpbf16ps (AMX). The output is "FLOPs wall-seconds thread-CPU-seconds": on a shared
 * machine FLOPs / CPU-seconds is the rate while the thread ran, FLOPs / wall-seconds what it got.
 * "clock" runs a chain of dependent one-cycle integer adds, so its "FLOPs" per second are the clock.
 * Only the kernels the compiler's -march=native allows are built; "list" prints them.
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double clock_s(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

volatile float seed_b = 0.999f, seed_c = 1e-3f;
volatile float sink;
volatile long sink_l;

#define UNROLL _Pragma("GCC unroll 16")

#ifdef __AVX512F__
static double avx512_fp32(long n) {
    __m512 acc[16], b = _mm512_set1_ps(seed_b), c = _mm512_set1_ps(seed_c);
    UNROLL for (int j = 0; j < 16; j++) acc[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < n; i++) {
        UNROLL for (int j = 0; j < 16; j++) acc[j] = _mm512_fmadd_ps(acc[j], b, c);
    }
    UNROLL for (int j = 1; j < 16; j++) acc[0] = _mm512_add_ps(acc[0], acc[j]);
    sink = _mm512_reduce_add_ps(acc[0]);
    return n * 16.0 * 16 * 2;
}
#endif

#ifdef __AVX512BF16__
static double avx512_bf16(long n) {
    __m512 acc[16];
    __m512bh a = (__m512bh)_mm512_set1_epi16(0x3c00), b = (__m512bh)_mm512_set1_epi16(0x3c00);
    UNROLL for (int j = 0; j < 16; j++) acc[j] = _mm512_set1_ps(seed_c * j);
    for (long i = 0; i < n; i++) {
        UNROLL for (int j = 0; j < 16; j++) acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
    }
    UNROLL for (int j = 1; j < 16; j++) acc[0] = _mm512_add_ps(acc[0], acc[j]);
    sink = _mm512_reduce_add_ps(acc[0]);
    /* 16 fp32 lanes, each a += x0*y0 + x1*y1: 2 multiplies and 2 adds */
    return n * 16.0 * 16 * 4;
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
static double avx2_fp32(long n) {
    __m256 acc[12], b = _mm256_set1_ps(seed_b), c = _mm256_set1_ps(seed_c);
    UNROLL for (int j = 0; j < 12; j++) acc[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < n; i++) {
        UNROLL for (int j = 0; j < 12; j++) acc[j] = _mm256_fmadd_ps(acc[j], b, c);
    }
    UNROLL for (int j = 1; j < 12; j++) acc[0] = _mm256_add_ps(acc[0], acc[j]);
    float out[8];
    _mm256_storeu_ps(out, acc[0]);
    sink = out[0];
    return n * 12.0 * 8 * 2;
}
#endif

#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
typedef struct {
    uint8_t palette_id, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

static double amx_bf16(long n) {
    static int ready;
    static uint16_t a[16 * 32] __attribute__((aligned(64)));
    static float c[16 * 16] __attribute__((aligned(64)));
    if (!ready) {
        /* Linux hands out the 8 KiB tile state only on request (ARCH_REQ_XCOMP_PERM, XTILEDATA) */
        if (syscall(SYS_arch_prctl, 0x1023, 18)) {
            perror("arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)");
            exit(3);
        }
        tilecfg cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.palette_id = 1;
        for (int t = 0; t < 8; t++) {
            cfg.rows[t] = 16;
            cfg.colsb[t] = 64;
        }
        for (int i = 0; i < 16 * 32; i++) a[i] = 0x3c00;
        _tile_loadconfig(&cfg);
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
        _tile_loadd(4, a, 64); _tile_loadd(5, a, 64); _tile_loadd(6, a, 64); _tile_loadd(7, a, 64);
        ready = 1;
    }
    /* four independent 16x16 fp32 accumulators, each C += A (16x32 bf16) . B (32x16 bf16) */
    for (long i = 0; i < n; i++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, 64);
    sink = c[0];
    return n * 4.0 * 16 * 16 * 32 * 2;
}
#endif

#define ADD10 "add $1, %0\n\t" "add $1, %0\n\t" "add $1, %0\n\t" "add $1, %0\n\t" "add $1, %0\n\t" \
              "add $1, %0\n\t" "add $1, %0\n\t" "add $1, %0\n\t" "add $1, %0\n\t" "add $1, %0\n\t"

/* a chain of dependent one-cycle integer adds: its rate is the core's clock */
static double cycles(long n) {
    long x = 0;
    for (long i = 0; i < n; i++) __asm__ volatile(ADD10 ADD10 ADD10 ADD10 ADD10 : "+r"(x));
    sink_l = x;
    return n * 50.0;
}

static const struct {
    const char *name;
    double (*run)(long);
    long chunk;
} kernels[] = {
#if defined(__AMX_TILE__) && defined(__AMX_BF16__)
    {"amx_bf16", amx_bf16, 1 << 12},
#endif
#ifdef __AVX512BF16__
    {"avx512_bf16", avx512_bf16, 1 << 14},
#endif
#ifdef __AVX512F__
    {"avx512_fp32", avx512_fp32, 1 << 14},
#endif
#if defined(__AVX2__) && defined(__FMA__)
    {"avx2_fp32", avx2_fp32, 1 << 14},
#endif
    {"clock", cycles, 1 << 14},
};

int main(int argc, char **argv) {
    int n = sizeof kernels / sizeof kernels[0];
    if (argc == 2 && !strcmp(argv[1], "list")) {
        for (int k = 0; k < n; k++) printf("%s\n", kernels[k].name);
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: %s list | KERNEL SECONDS\n", argv[0]);
        return 2;
    }
    for (int k = 0; k < n; k++) {
        if (strcmp(argv[1], kernels[k].name)) continue;
        double seconds = atof(argv[2]), work = kernels[k].run(16); /* warm-up, AMX set-up */
        double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), w1;
        work = 0;
        do {
            work += kernels[k].run(kernels[k].chunk);
            w1 = clock_s(CLOCK_MONOTONIC);
        } while (w1 - w0 < seconds);
        printf("%.6e %.6f %.6f\n", work, w1 - w0, clock_s(CLOCK_THREAD_CPUTIME_ID) - c0);
        return 0;
    }
    fprintf(stderr, "unknown kernel %s\n", argv[1]);
    return 2;
}
