package server_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"wengang/server"
	"wengang/server/citytest"
)

func TestServerServesHealthForWhatItServes(t *testing.T) {
	t.Parallel()
	c := citytest.Start(t, citytest.Options{})
	conn, err := grpc.NewClient(c.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	ctx := context.Background()
	for _, svc := range []string{"SyncService", "IntakeService", "PublicityService", "FinanceService", "PortalService", "ProgressService", "AuditService"} {
		res, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "wengang.v1." + svc})
		if err != nil || res.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%s: %v, %v", svc, res, err)
		}
	}
	// A service the city does not serve (a node's) is not reported.
	if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "wengang.v1.ImportService"}); status.Code(err) != codes.NotFound {
		t.Fatalf("ImportService health: %v", err)
	}
}

func TestNewNeedsADatabase(t *testing.T) {
	t.Parallel()
	if _, err := server.New(context.Background(), server.Config{}); err == nil {
		t.Fatal("a server without a database")
	}
	if _, err := server.New(context.Background(), server.Config{DB: "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"}); err == nil {
		t.Fatal("a server on a database that does not answer")
	}
}
