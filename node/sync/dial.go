package sync

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	wengangv1 "wengang/proto/wengang/v1"
)

// maxMessage bounds a message the city sends back (a page of decisions).
const maxMessage = 64 << 20

// Dial returns a CityClient that calls the city's SyncService at target
// with grpc-go: over TLS with tlsCfg (mutual TLS when it holds the node's
// client certificate), or over h2c (HTTP/2 without TLS) when tlsCfg is nil,
// for local development. target is host:port, or a URL: http://host:port
// (h2c; tlsCfg must be nil) or https://host:port (TLS; the system's roots
// when tlsCfg is nil). Nothing is connected until the first call; the
// connection is re-established by itself after the city restarts. Close the
// io.Closer when done.
func Dial(target string, tlsCfg *tls.Config) (CityClient, io.Closer, error) {
	addr, secure, err := parseTarget(target, tlsCfg != nil)
	if err != nil {
		return nil, nil, err
	}
	var creds credentials.TransportCredentials
	switch {
	case secure && tlsCfg == nil:
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	case secure:
		creds = credentials.NewTLS(tlsCfg)
	default:
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		// Reconnect soon after the city comes back; the worker's own
		// backoff paces the pushes.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage)),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("sync: city %s: %w", target, err)
	}
	return grpcCity{wengangv1.NewSyncServiceClient(conn)}, conn, nil
}

// parseTarget returns the host:port of target and whether to use TLS.
func parseTarget(target string, haveTLS bool) (string, bool, error) {
	if !strings.Contains(target, "://") {
		if target == "" {
			return "", false, fmt.Errorf("sync: the city's address is required")
		}
		return target, haveTLS, nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return "", false, fmt.Errorf("sync: city URL %q: %w", target, err)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", false, fmt.Errorf("sync: city URL %q: want scheme://host:port", target)
	}
	switch u.Scheme {
	case "https":
		return u.Host, true, nil
	case "http":
		if haveTLS {
			return "", false, fmt.Errorf("sync: city URL %q is http:// but TLS is configured: use https://", target)
		}
		return u.Host, false, nil
	}
	return "", false, fmt.Errorf("sync: city URL %q: the scheme must be http or https", target)
}

// grpcCity adapts the generated grpc-go client to CityClient.
type grpcCity struct{ c wengangv1.SyncServiceClient }

func (g grpcCity) PushBatch(ctx context.Context, req *wengangv1.PushBatchRequest) (*wengangv1.PushBatchResponse, error) {
	return g.c.PushBatch(ctx, req)
}

func (g grpcCity) PullDecisions(ctx context.Context, req *wengangv1.PullDecisionsRequest) (*wengangv1.PullDecisionsResponse, error) {
	return g.c.PullDecisions(ctx, req)
}

func (g grpcCity) PushAccountCorrection(ctx context.Context, req *wengangv1.PushAccountCorrectionRequest) (*wengangv1.PushAccountCorrectionResponse, error) {
	return g.c.PushAccountCorrection(ctx, req)
}

func (g grpcCity) ReportScreening(ctx context.Context, req *wengangv1.ReportScreeningRequest) (*wengangv1.ReportScreeningResponse, error) {
	return g.c.ReportScreening(ctx, req)
}
