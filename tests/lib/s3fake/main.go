// s3fake - the S3-compatible server the blob tests run against: gofakes3
// (github.com/johannesboyne/gofakes3, pinned in go.mod) with buckets in
// memory (where lists page) or on disk (-dir: lists do not page), behind a check of every request's AWS Signature V4 recomputed
// with the AWS SDK's own signer, so that a signing mistake in Terrace
// fails the tests instead of passing against a server that ignores
// signatures (gofakes3 alone does).  Also checks the payload hash a
// request signs, and the session token when one is configured.
//
// Binds loopback only; writes the port it got to -port-file.  With -cert
// and -key it serves HTTPS (HTTP/1.1 only, as S3 does) instead of HTTP.
//
// SPDX-License-Identifier: MPL-2.0
package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

type checker struct {
	access, secret, token string
	logRequests           bool
	next                  http.Handler
}

func deny(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"+
		"<Error><Code>%s</Code><Message>%s</Message></Error>", code, msg)
}

// authFields splits "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
// Signature=..." into its three fields.
func authFields(h string) (cred, signed, sig string, ok bool) {
	rest, found := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !found {
		return "", "", "", false
	}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		}
	}
	return cred, signed, sig, cred != "" && signed != "" && sig != ""
}

// hashingBody fails the last read when the body's SHA-256 differs from
// the one the request signed.
type hashingBody struct {
	r    io.ReadCloser
	h    hash.Hash
	want string
}

func (b *hashingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	if errors.Is(err, io.EOF) &&
		hex.EncodeToString(b.h.Sum(nil)) != b.want {
		return n, errors.New("payload does not match x-amz-content-sha256")
	}
	return n, err
}

func (b *hashingBody) Close() error { return b.r.Close() }

func (c *checker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.logRequests {
		log.Printf("%s %s range=%q len=%d", r.Method, r.URL,
			r.Header.Get("Range"), r.ContentLength)
	}
	cred, signed, sig, ok := authFields(r.Header.Get("Authorization"))
	if !ok {
		deny(w, "AccessDenied", "missing or malformed Authorization")
		return
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[0] != c.access || scope[3] != "s3" ||
		scope[4] != "aws4_request" {
		deny(w, "InvalidAccessKeyId", "unknown access key or bad scope")
		return
	}
	if c.token != "" && r.Header.Get("X-Amz-Security-Token") != c.token {
		deny(w, "InvalidToken", "missing or wrong session token")
		return
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || when.Format("20060102") != scope[1] {
		deny(w, "AccessDenied", "bad x-amz-date")
		return
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		deny(w, "AccessDenied", "missing x-amz-content-sha256")
		return
	}
	// The request as the client signed it: only its signed headers.
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	again, _ := http.NewRequest(r.Method, u.String(), nil)
	again.Host = r.Host
	for _, name := range strings.Split(signed, ";") {
		switch name {
		case "host":
		case "content-length":
			again.ContentLength = r.ContentLength
		default:
			for _, v := range r.Header.Values(name) {
				again.Header.Add(name, v)
			}
		}
	}
	again.Header.Del("Authorization")
	creds := aws.Credentials{AccessKeyID: c.access, SecretAccessKey: c.secret,
		SessionToken: r.Header.Get("X-Amz-Security-Token")}
	signer := v4.NewSigner(func(o *v4.SignerOptions) {
		o.DisableURIPathEscaping = true
	})
	err = signer.SignHTTP(context.Background(), creds, again, payload, "s3",
		scope[2], when)
	if err != nil {
		deny(w, "AccessDenied", err.Error())
		return
	}
	_, _, want, _ := authFields(again.Header.Get("Authorization"))
	if subtle.ConstantTimeCompare([]byte(want), []byte(sig)) != 1 {
		log.Printf("signature mismatch: %s %s", r.Method, r.URL)
		deny(w, "SignatureDoesNotMatch", "signature does not match")
		return
	}
	if payload != "UNSIGNED-PAYLOAD" && r.Body != nil {
		r.Body = &hashingBody{r: r.Body, h: sha256.New(), want: payload}
	}
	// gofakes3 matches BUCKET.BASE against the host without its port.
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		r.Host = h
	}
	c.next.ServeHTTP(w, r)
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	dir := flag.String("dir", "",
		"directory holding the buckets (default: memory, which pages lists)")
	bucket := flag.String("bucket", "terrace", "bucket created at start")
	portFile := flag.String("port-file", "", "file to write the port to")
	hostBase := flag.String("hostbucketbase", "",
		"host suffix for virtual-hosted addressing (BUCKET.BASE)")
	certFile := flag.String("cert", "", "PEM certificate: serve HTTPS")
	keyFile := flag.String("key", "", "PEM private key of -cert")
	flag.Parse()
	c := &checker{
		access:      os.Getenv("AWS_ACCESS_KEY_ID"),
		secret:      os.Getenv("AWS_SECRET_ACCESS_KEY"),
		token:       os.Getenv("AWS_SESSION_TOKEN"),
		logRequests: os.Getenv("S3FAKE_LOG") == "1",
	}
	if c.access == "" || c.secret == "" {
		log.Fatal("s3fake: need AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		log.Fatal("s3fake: -addr must be a loopback address")
	}
	var backend gofakes3.Backend = s3mem.New()
	if *dir != "" {
		fs, err := s3afero.FsPath(*dir, s3afero.FsPathCreateAll)
		if err != nil {
			log.Fatal(err)
		}
		backend, err = s3afero.MultiBucket(fs)
		if err != nil {
			log.Fatal(err)
		}
	}
	err = backend.CreateBucket(*bucket)
	if err != nil && !gofakes3.IsAlreadyExists(err) {
		log.Fatal(err)
	}
	opts := []gofakes3.Option{gofakes3.WithLogger(gofakes3.DiscardLog())}
	if *hostBase != "" {
		opts = append(opts, gofakes3.WithHostBucketBase(*hostBase))
	}
	c.next = gofakes3.New(backend, opts...).Server()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *portFile != "" {
		port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
		if err := os.WriteFile(*portFile+".tmp", []byte(port+"\n"),
			0o644); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(*portFile+".tmp", *portFile); err != nil {
			log.Fatal(err)
		}
	}
	srv := &http.Server{Handler: c}
	if *certFile == "" {
		log.Fatal(srv.Serve(ln))
	}
	// An empty TLSNextProto keeps HTTP/2 off: clients speak HTTP/1.1.
	srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	log.Fatal(srv.ServeTLS(ln, *certFile, *keyFile))
}
