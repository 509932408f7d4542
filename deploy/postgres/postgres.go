// Package postgres starts the private PostgreSQL cluster of cluster.sh
// from Go, for programs that need one and have nothing else: `wengang
// demo`. The script is embedded, so the binary carries it; it installs
// Debian's PostgreSQL where it can when the machine has none.
package postgres

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

//go:embed cluster.sh
var script []byte

// Cluster is a running private cluster.
type Cluster struct {
	Dir string // where it lives
	URL string // its superuser URL
	sh  string // the script, written out
}

// Start creates and starts a cluster in dir on port (cluster.sh start)
// and returns it; its log lines go to stderr. fast turns off fsync (for
// demos and tests only).
func Start(ctx context.Context, dir string, port int, fast bool, stderr *os.File) (*Cluster, error) {
	tmp, err := os.MkdirTemp("", "wengang-cluster-sh-")
	if err != nil {
		return nil, err
	}
	sh := filepath.Join(tmp, "cluster.sh")
	if err := os.WriteFile(sh, script, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "bash", sh, "start", dir, fmt.Sprint(port))
	cmd.Env = os.Environ()
	if fast {
		cmd.Env = append(cmd.Env, "WENGANG_PG_FAST=1")
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("postgres: cluster.sh start: %w", err)
	}
	return &Cluster{Dir: dir, URL: strings.TrimSpace(out.String()), sh: sh}, nil
}

// Database returns the URL of database name on the cluster.
func (c *Cluster) Database(name string) string {
	return strings.Replace(c.URL, "/postgres?", "/"+name+"?", 1)
}

// Stop stops the cluster and removes its directory.
func (c *Cluster) Stop() error {
	cmd := exec.Command("bash", c.sh, "stop", c.Dir)
	out, err := cmd.CombinedOutput()
	os.RemoveAll(filepath.Dir(c.sh))
	if err != nil {
		return fmt.Errorf("postgres: cluster.sh stop: %w: %s", err, out)
	}
	return nil
}
