package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"wengang/client/cli"
	"wengang/internal/rpc"
	"wengang/node"
	"wengang/node/sms"
	nodesync "wengang/node/sync"
	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/server"
)

// serveCommands returns the long-running processes: the county node and
// the city server.
func serveCommands() []cli.Command {
	return []cli.Command{
		{Name: "node", Summary: "县级节点: serve one or more counties (import, screening, review, notification, batches, sync to the city)", Run: runNode},
		{Name: "city", Summary: "市级服务: serve the city (intake, publicity rounds, finance, the public portal)", Run: runCity},
	}
}

func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q: want text or json", cli.ErrUsage, format)
}

func serverTLS(cert, key, clientCA string) (*tls.Config, error) {
	switch {
	case cert == "" && key == "":
		return nil, nil
	case cert == "" || key == "":
		return nil, fmt.Errorf("%w: --tls-cert and --tls-key go together", cli.ErrUsage)
	}
	return rpc.ServerTLS(cert, key, clientCA)
}

func runNode(env cli.Env, args []string) error {
	fs := cli.NewFlags(env, "node")
	listen := fs.String("listen", "127.0.0.1:8443", "address to serve on")
	db := fs.String("db", os.Getenv("WENGANG_NODE_DB"), "PostgreSQL URL of the node's database (default $WENGANG_NODE_DB)")
	counties := fs.String("counties", "", "counties served, comma-separated, such as 371502,371521")
	city := fs.String("city", "", "the city's URL for sync, such as https://city.example:9443 (empty: no sync)")
	tlsCert := fs.String("tls-cert", "", "the node's server certificate (empty: h2c, for local development)")
	tlsKey := fs.String("tls-key", "", "its key")
	ca := fs.String("ca", "", "CA certificate that signed the city's certificate")
	cityCert := fs.String("city-cert", "", "the node's client certificate for the city (mutual TLS), naming its counties")
	cityKey := fs.String("city-key", "", "its key")
	smsGateway := fs.String("sms", "file:sms-outbox.jsonl", "SMS gateway: file:PATH (development) or an https:// URL of the provider (key in $WENGANG_SMS_KEY)")
	phones := fs.String("phones", "", "agency phone per county for SMS texts, such as 371502=0635-8241234 (default 0635-12333)")
	syncEvery := fs.Duration("sync-interval", 10*time.Second, "how often to look for batches to push and decisions to pull")
	logFormat := fs.String("log-format", "text", "text or json")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(env.Stderr, *logFormat)
	if err != nil {
		return err
	}
	codes := cli.SplitList(*counties)
	cfg := node.Config{DB: *db, Counties: codes, Log: log, SyncInterval: *syncEvery, Phones: map[string]string{}}
	for _, c := range codes {
		cfg.Phones[c] = "0635-12333"
	}
	for _, p := range cli.SplitList(*phones) {
		code, phone, ok := strings.Cut(p, "=")
		if !ok {
			return fmt.Errorf("%w: --phones %q: want COUNTY=PHONE", cli.ErrUsage, p)
		}
		cfg.Phones[code] = phone
	}
	if cfg.TLS, err = serverTLS(*tlsCert, *tlsKey, ""); err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(*smsGateway, "file:"):
		cfg.SMS = &sms.FileGateway{Path: strings.TrimPrefix(*smsGateway, "file:"), Log: log}
	case strings.HasPrefix(*smsGateway, "https://"):
		cfg.SMS = &sms.HTTPGateway{URL: *smsGateway, Key: os.Getenv("WENGANG_SMS_KEY")}
	default:
		return fmt.Errorf("%w: --sms %q: want file:PATH or https://...", cli.ErrUsage, *smsGateway)
	}
	if *city != "" {
		var ctls *tls.Config
		if strings.HasPrefix(*city, "https://") && (*ca != "" || *cityCert != "") {
			if ctls, err = rpc.ClientTLS(*ca, *cityCert, *cityKey); err != nil {
				return err
			}
		}
		cc, closer, err := nodesync.Dial(*city, ctls)
		if err != nil {
			return err
		}
		defer closer.Close()
		cfg.City = cc
	}
	if cfg.Access, err = access.New(); err != nil {
		return err
	}
	n, err := node.New(env.Ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	return n.Serve(env.Ctx, ln)
}

func runCity(env cli.Env, args []string) error {
	fs := cli.NewFlags(env, "city")
	listen := fs.String("listen", "127.0.0.1:9443", "address to serve on")
	db := fs.String("db", os.Getenv("WENGANG_CITY_DB"), "PostgreSQL URL of the city's database (default $WENGANG_CITY_DB)")
	tlsCert := fs.String("tls-cert", "", "the city's server certificate (empty: h2c, for local development)")
	tlsKey := fs.String("tls-key", "", "its key")
	clientCA := fs.String("client-ca", "", "CA whose client certificates identify county nodes")
	businessDate := fs.String("business-date", "", "fix \"today\" (YYYY-MM-DD) for drills and tests; default: today in Asia/Shanghai")
	logFormat := fs.String("log-format", "text", "text or json")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(env.Stderr, *logFormat)
	if err != nil {
		return err
	}
	if *db == "" {
		return fmt.Errorf("%w: --db is required", cli.ErrUsage)
	}
	cfg := server.Config{Listen: *listen, DB: *db, Log: log}
	if *businessDate != "" {
		if cfg.BusinessDate, err = civil.ParseDate(*businessDate); err != nil {
			return fmt.Errorf("%w: --business-date: %v", cli.ErrUsage, err)
		}
	}
	if cfg.TLS, err = serverTLS(*tlsCert, *tlsKey, *clientCA); err != nil {
		return err
	}
	if cfg.Access, err = access.New(); err != nil {
		return err
	}
	s, err := server.New(env.Ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.ListenAndServe(env.Ctx)
}
