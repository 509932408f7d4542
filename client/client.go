// Package client is the Go client library of Wengang: the generated Connect
// clients of a county node or the city, over an HTTP client that speaks
// HTTP/2 (h2c for http:// URLs, TLS for https://), with the caller's bearer
// token on every request, and helpers for what takes more than one call
// (streaming a file up, a screening's results down).
package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"

	"wengang/internal/rpc"
	"wengang/proto/wengang/v1/wengangv1connect"
)

// Options say how to reach a server.
type Options struct {
	Token    string        // bearer token (wengang token create)
	CAFile   string        // CA to trust for https:// (default: the system's)
	CertFile string        // client certificate, for nodes talking to the city
	KeyFile  string        // its key
	Timeout  time.Duration // per request; 0 means none (streams can be long)
}

// HTTPClient returns an HTTP/2 client for baseURL: h2c for http://, TLS for
// https://. Client streams (file uploads) need HTTP/2.
func HTTPClient(baseURL string, o Options) (*http.Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http://HOST:PORT or https://HOST:PORT", baseURL)
	}
	protocols := new(http.Protocols)
	tr := &http.Transport{Protocols: protocols, ForceAttemptHTTP2: true, IdleConnTimeout: 90 * time.Second}
	if u.Scheme == "http" {
		protocols.SetUnencryptedHTTP2(true)
	} else {
		protocols.SetHTTP2(true)
		var cfg *tls.Config
		if o.CAFile != "" || o.CertFile != "" {
			if cfg, err = rpc.ClientTLS(o.CAFile, o.CertFile, o.KeyFile); err != nil {
				return nil, err
			}
		}
		tr.TLSClientConfig = cfg
	}
	return &http.Client{Transport: tr, Timeout: o.Timeout}, nil
}

// Bearer returns the client interceptor that sends token as
// "Authorization: Bearer TOKEN" on every request and stream (nothing when
// token is empty).
func Bearer(token string) connect.Interceptor { return bearer(token) }

type bearer string

func (b bearer) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if b != "" {
			req.Header().Set("Authorization", "Bearer "+string(b))
		}
		return next(ctx, req)
	}
}

func (b bearer) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		if b != "" {
			conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		}
		return conn
	}
}

func (b bearer) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// Node holds the clients of a county node's services.
type Node struct {
	Import       wengangv1connect.ImportServiceClient
	Screening    wengangv1connect.ScreeningServiceClient
	Review       wengangv1connect.ReviewServiceClient
	Notification wengangv1connect.NotificationServiceClient
	Batch        wengangv1connect.BatchServiceClient
	Audit        wengangv1connect.AuditServiceClient
}

// NewNode returns clients of the node at baseURL (gRPC protocol, so that
// they work against any gRPC server too).
func NewNode(baseURL string, o Options) (*Node, error) {
	hc, err := HTTPClient(baseURL, o)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(baseURL, "/")
	opts := []connect.ClientOption{connect.WithGRPC(), connect.WithInterceptors(Bearer(o.Token))}
	return &Node{
		Import:       wengangv1connect.NewImportServiceClient(hc, base, opts...),
		Screening:    wengangv1connect.NewScreeningServiceClient(hc, base, opts...),
		Review:       wengangv1connect.NewReviewServiceClient(hc, base, opts...),
		Notification: wengangv1connect.NewNotificationServiceClient(hc, base, opts...),
		Batch:        wengangv1connect.NewBatchServiceClient(hc, base, opts...),
		Audit:        wengangv1connect.NewAuditServiceClient(hc, base, opts...),
	}, nil
}

// NewKey returns a fresh idempotency key. A command makes one per
// invocation and reuses it on every retry of the same write.
func NewKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
