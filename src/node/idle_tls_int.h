/*
 * idle_tls_int.h - struct idle_tls, shared by the client (idle_https.c)
 * and the listener (idle_listen.c), and their socket callbacks.
 *
 * SPDX-License-Identifier: MPL-2.0
 */
#ifndef TR_IDLE_TLS_INT_H
#define TR_IDLE_TLS_INT_H

#include <stdbool.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

/* One connection of the client. */
struct idle_conn {
    int fd; /* -1: closed */
    bool tls;
    mbedtls_ssl_context ssl;
};

/* One TLS configuration.  The random generator is used by one thread at a
 * time: the client's calls come from the caller's threads, so each
 * thread that calls has its own struct idle_tls, which also keeps that
 * thread's connection open between calls. */
struct idle_tls {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;   /* the client's trust */
    mbedtls_x509_crt cert; /* the listener's own */
    mbedtls_pk_context key;
    struct idle_conn kept; /* the client's connection between calls */
    char kept_at[280];     /* host:port it goes to */
};

/* mbed TLS's send and receive callbacks on a blocking socket (ctx: its
 * int fd), for the client and the listener (idle_https.c). */
int idle_sock_send(void *ctx, const unsigned char *p, size_t n);
int idle_sock_recv(void *ctx, unsigned char *p, size_t n);

#endif
