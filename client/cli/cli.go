// Package cli holds the wengang subcommands that clerks, administrators
// and operators script: each is a function from arguments and standard
// streams to an exit status, so that tests run them in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Env is what a command may touch: its streams and a context.
type Env struct {
	Ctx    context.Context
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Command is one subcommand.
type Command struct {
	Name    string
	Summary string // one line, shown by "wengang help"
	Run     func(env Env, args []string) error
}

// ErrUsage is returned (wrapped) for bad flags or arguments; the exit
// status is then 2.
var ErrUsage = errors.New("usage")

// ErrReported means the command already printed what went wrong (every bad
// row, say); the exit status is 1 and nothing more is printed.
var ErrReported = errors.New("reported")

// Main runs the subcommand named by args[0] and returns the exit status.
func Main(env Env, cmds []Command, args []string) int {
	byName := make(map[string]Command, len(cmds))
	for _, c := range cmds {
		byName[c.Name] = c
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.Stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := byName[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "wengang: unknown command %q (未知命令); run \"wengang help\"\n", args[0])
		return 2
	}
	err := c.Run(env, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		fmt.Fprintf(env.Stderr, "wengang %s: %v\n", c.Name, err)
		return 2
	case errors.Is(err, ErrReported):
		return 1
	default:
		fmt.Fprintf(env.Stderr, "wengang %s: %v\n", c.Name, err)
		return 1
	}
}

func usage(w io.Writer, cmds []Command) {
	fmt.Fprintln(w, "wengang — 失业保险稳岗返还「免申即享」平台 (job-stabilization refund platform)")
	fmt.Fprintln(w, "\nusage: wengang COMMAND [flags]\n\ncommands:")
	sorted := append([]Command(nil), cmds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintln(w, "\nrun \"wengang COMMAND -h\" for a command's flags")
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(env Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("wengang "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// parse parses args and turns a flag error into a usage error.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	return nil
}

// writeAtomic writes a file by way of a temporary file in the same
// directory and a rename, so that a failure never leaves a partial file.
func writeAtomic(path string, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = write(tmp); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// NewFlags returns a flag set for a command defined outside this package
// (the servers, in main), reporting errors instead of exiting.
func NewFlags(env Env, name string) *flag.FlagSet { return newFlags(env, name) }

// ParseFlags parses args, turning a flag error into a usage error.
func ParseFlags(fs *flag.FlagSet, args []string) error { return parse(fs, args) }

// SplitList splits a comma-separated flag value, dropping empty items.
func SplitList(s string) []string { return splitList(s) }
