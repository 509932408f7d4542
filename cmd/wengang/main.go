// Command wengang is the one binary of the Wengang platform: the city
// server, the county node, the command line of clerks, administrators and
// finance operators, and the offline tools (screen, workdays, uscc, gen).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"wengang/client/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := cli.Env{Ctx: ctx, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	cmds := append(cli.Offline(), cli.NodeCommands()...)
	cmds = append(cmds, cli.Admin()...)
	cmds = append(cmds, cli.CityCommands()...)
	cmds = append(cmds, cli.FinanceCommands()...)
	cmds = append(cmds, cli.ProgressCommands()...)
	cmds = append(cmds, serveCommands()...)
	cmds = append(cmds, demoCommand())
	code := cli.Main(env, cmds, os.Args[1:])
	stop()
	os.Exit(code)
}
