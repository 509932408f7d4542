package client

import (
	"strings"

	"connectrpc.com/connect"

	"wengang/proto/wengang/v1/wengangv1connect"
)

// City holds the clients of the city server's services for people and
// finance systems (the county nodes' SyncService is the sync worker's).
type City struct {
	Intake    wengangv1connect.IntakeServiceClient
	Publicity wengangv1connect.PublicityServiceClient
	Finance   wengangv1connect.FinanceServiceClient
	Portal    wengangv1connect.PortalServiceClient
	Progress  wengangv1connect.ProgressServiceClient
}

// NewCity returns clients of the city at baseURL (gRPC protocol, so that
// they work against any gRPC server too), sending o.Token as a bearer
// token. An https:// URL uses TLS with o.CAFile; http:// uses h2c.
func NewCity(baseURL string, o Options) (*City, error) {
	hc, err := HTTPClient(baseURL, o)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(baseURL, "/")
	opts := []connect.ClientOption{connect.WithGRPC(), connect.WithInterceptors(Bearer(o.Token))}
	return &City{
		Intake:    wengangv1connect.NewIntakeServiceClient(hc, base, opts...),
		Publicity: wengangv1connect.NewPublicityServiceClient(hc, base, opts...),
		Finance:   wengangv1connect.NewFinanceServiceClient(hc, base, opts...),
		Portal:    wengangv1connect.NewPortalServiceClient(hc, base, opts...),
		Progress:  wengangv1connect.NewProgressServiceClient(hc, base, opts...),
	}, nil
}
