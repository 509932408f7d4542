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
	res, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "wengang.v1.SyncService"})
	if err != nil || res.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("SyncService: %v, %v", res, err)
	}
	// A service the city does not serve yet is not reported, nor answered.
	if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "wengang.v1.IntakeService"}); status.Code(err) != codes.NotFound {
		t.Fatalf("IntakeService health: %v", err)
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
