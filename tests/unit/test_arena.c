/*
 * test_arena.c - unit tests for src/core/arena.c: alignment, zeroing,
 * large allocations, string helpers and cleanup order.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/arena.h"

static void test_alloc_zeroed_aligned(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    for (size_t size = 0; size < 200; size++) {
        unsigned char *p = arena_alloc(a, size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        for (size_t i = 0; i < size; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xab, size); /* ASan: every byte is ours */
    }
    arena_destroy(a);
}

static void test_alloc_distinct(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    char *p[1000];
    for (int i = 0; i < 1000; i++) {
        p[i] = arena_alloc(a, 24);
        memset(p[i], i & 0xff, 24);
    }
    for (int i = 0; i < 1000; i++)
        for (int j = 0; j < 24; j++)
            assert_int_equal((unsigned char)p[i][j], i & 0xff);
    assert_true(arena_used(a) >= 1000 * 24);
    arena_destroy(a);
}

static void test_large_allocs(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    char *small1 = arena_alloc(a, 10);
    strcpy(small1, "before");
    /* bigger than a block, and exactly around the half-block cut-off */
    size_t sizes[] = {4095, 4096, 4097, 8192, 8193, 100000, 1 << 20};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *big = arena_alloc(a, sizes[i]);
        assert_int_equal((uintptr_t)big % 16, 0);
        assert_int_equal(big[0], 0);
        assert_int_equal(big[sizes[i] - 1], 0);
        memset(big, 0x5a, sizes[i]);
    }
    /* small allocations keep working after large ones */
    char *small2 = arena_alloc(a, 10);
    strcpy(small2, "after");
    assert_string_equal(small1, "before");
    assert_string_equal(small2, "after");
    assert_true(arena_used(a) >= (1 << 20) + 100000);
    arena_destroy(a);
}

static void test_first_alloc_large(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    char *big = arena_alloc(a, 50000);
    memset(big, 1, 50000);
    char *s = arena_alloc(a, 16);
    memset(s, 2, 16);
    assert_int_equal(big[49999], 1);
    arena_destroy(a);
}

static void test_strings(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    assert_null(arena_strdup(a, NULL));
    assert_null(arena_strndup(a, NULL, 3));
    assert_string_equal(arena_strdup(a, ""), "");
    assert_string_equal(arena_strdup(a, "hello"), "hello");
    assert_string_equal(arena_strndup(a, "hello", 3), "hel");
    assert_string_equal(arena_strndup(a, "hello", 0), "");
    const char *orig = "copy me";
    char *dup = arena_strdup(a, orig);
    assert_ptr_not_equal(dup, orig);
    unsigned char bytes[5] = {0, 1, 2, 0, 4};
    unsigned char *m = arena_memdup(a, bytes, sizeof(bytes));
    assert_memory_equal(m, bytes, sizeof(bytes));
    assert_non_null(arena_memdup(a, NULL, 0));
    assert_string_equal(arena_printf(a, "%s-%d-%05.1f", "x", 42, 3.14159),
                        "x-42-003.1");
    assert_string_equal(arena_printf(a, "%s", ""), "");
    /* a formatted string longer than a block */
    char *longs = arena_printf(a, "%20000d|", 7);
    assert_int_equal(strlen(longs), 20001);
    assert_int_equal(longs[19999], '7');
    arena_destroy(a);
}

/* Formatted strings of many lengths after allocations that leave every
 * amount of room in the newest block (arena_printf() prints straight
 * into that room when the text fits): each string right, aligned
 * allocations after it, zeroed, and nothing overwritten (checked at
 * the end). */
static void test_printf_in_room(void **state)
{
    (void)state;
    enum { N = 1500 };
    struct arena *a = arena_new();
    char **s = arena_alloc(a, sizeof(char *) * N);
    unsigned char **g = arena_alloc(a, sizeof(unsigned char *) * N);
    for (int i = 0; i < N; i++) {
        size_t glen = 1 + (size_t)(i % 97) * 16;
        g[i] = arena_alloc(a, glen);
        memset(g[i], i & 0xff, glen);
        int width = 1 + (i * 37) % 6000;
        s[i] = arena_printf(a, "%*d", width, i % 10);
        unsigned char *after = arena_alloc(a, 16 + (size_t)(i % 64));
        assert_int_equal((uintptr_t)after % 16, 0);
        for (int k = 0; k < 16 + i % 64; k++) /* zeroed, as always */
            assert_int_equal(after[k], 0);
        memset(after, 0xee, 16 + (size_t)(i % 64));
    }
    for (int i = 0; i < N; i++) {
        size_t glen = 1 + (size_t)(i % 97) * 16;
        for (size_t k = 0; k < glen; k++)
            assert_int_equal(g[i][k], i & 0xff);
        int width = 1 + (i * 37) % 6000;
        assert_int_equal(strlen(s[i]), width);
        assert_int_equal(s[i][width - 1], '0' + i % 10);
        for (int k = 0; k < width - 1; k++)
            assert_int_equal(s[i][k], ' ');
    }
    arena_destroy(a);
}

static int order[8];
static int norder;

static void record(void *p)
{
    order[norder++] = *(int *)p;
}

static void test_cleanup_reverse_order(void **state)
{
    (void)state;
    static int ids[] = {1, 2, 3};
    norder = 0;
    struct arena *a = arena_new();
    for (int i = 0; i < 3; i++)
        arena_on_destroy(a, record, &ids[i]);
    assert_int_equal(norder, 0);
    arena_destroy(a);
    assert_int_equal(norder, 3);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 1);
}

static void free_it(void *p)
{
    free(p);
}

static void test_cleanup_frees_foreign_memory(void **state)
{
    (void)state;
    struct arena *a = arena_new();
    /* ASan reports a leak if the callback does not run */
    arena_on_destroy(a, free_it, malloc(100));
    arena_destroy(a);
    arena_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_zeroed_aligned),
        cmocka_unit_test(test_alloc_distinct),
        cmocka_unit_test(test_large_allocs),
        cmocka_unit_test(test_first_alloc_large),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_printf_in_room),
        cmocka_unit_test(test_cleanup_reverse_order),
        cmocka_unit_test(test_cleanup_frees_foreign_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
