package main

import (
	"encoding/json"
	"fmt"
	"os"

	"wengang/client/cli"
	"wengang/internal/demo"
)

func demoCommand() cli.Command {
	return cli.Command{Name: "demo", Summary: "演示: a private PostgreSQL, the city and three county nodes on loopback, generated data, import to paid", Run: runDemo}
}

func runDemo(env cli.Env, args []string) error {
	fs := cli.NewFlags(env, "demo")
	counties := fs.String("counties", "371502,371521,371526", "counties, one node each")
	units := fs.Int("units", 200, "units per county")
	seed := fs.Int64("seed", 20220428, "random seed of the generated data")
	serve := fs.Bool("serve", false, "keep running after the flow; print the portal URL")
	exportDir := fs.String("export-dir", "", "write each county's generated source files to DIR/COUNTY/")
	summaryJSON := fs.String("summary-json", "", "write the per-county summary as JSON to FILE")
	workDir := fs.String("work-dir", "", "directory for the cluster, certificates and logs (default: a temporary one, removed at the end)")
	logFormat := fs.String("log-format", "text", "text or json (the servers' logs go to stderr)")
	quiet := fs.Bool("quiet", true, "hide the servers' logs")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	o := demo.Options{Counties: cli.SplitList(*counties), Units: *units, Seed: *seed, Serve: *serve,
		ExportDir: *exportDir, WorkDir: *workDir, Out: env.Stdout}
	if !*quiet {
		log, err := newLogger(env.Stderr, *logFormat)
		if err != nil {
			return err
		}
		o.Log = log
	}
	sum, err := demo.Run(env.Ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout)
	demo.PrintTable(env.Stdout, sum, o.Counties)
	if *summaryJSON != "" {
		b, err := json.MarshalIndent(sum, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*summaryJSON, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}
