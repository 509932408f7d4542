package cli

import (
	"fmt"
	"strconv"

	"wengang/internal/gen"
	"wengang/policy/civil"
	"wengang/policy/refund"
)

func genCmd(env Env, args []string) error {
	fs := newFlags(env, "gen")
	out := fs.String("out", "", "directory to write units, contributions, accounts and exclusions into")
	counties := fs.String("counties", "371502,371521", "county codes, comma-separated")
	units := fs.Int("units", 1000, "units per county")
	seed := fs.Int64("seed", 1, "random seed: the same seed gives the same files")
	asOf := fs.String("as-of", "2022-04-28", "data date D the histories run up to")
	xlsx := fs.Bool("xlsx", false, "write .xlsx instead of .csv")
	encoding := fs.String("encoding", "utf-8", "CSV encoding: utf-8, utf-8-bom or gb18030")
	chinese := fs.Bool("chinese", false, "Chinese headers and values instead of English keys")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", ErrUsage)
	}
	d, err := civil.ParseDate(*asOf)
	if err != nil {
		return fmt.Errorf("%w: --as-of: %v", ErrUsage, err)
	}
	f := gen.Format{XLSX: *xlsx, Chinese: *chinese, Seed: *seed}
	switch *encoding {
	case "utf-8", "utf8":
		f.Encoding = gen.UTF8
	case "utf-8-bom", "utf8bom":
		f.Encoding = gen.UTF8BOM
	case "gb18030":
		f.Encoding = gen.GB18030
	default:
		return fmt.Errorf("%w: --encoding %q: want utf-8, utf-8-bom or gb18030", ErrUsage, *encoding)
	}
	cfg := gen.Config{Counties: splitList(*counties), Units: *units, Seed: *seed, PolicyYear: refund.DefaultParams().PolicyYear, AsOf: d}
	ds, err := gen.Generate(cfg)
	if err != nil {
		return err
	}
	if err := gen.Write(*out, ds, f); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "wrote %s units, %s contributions, %s accounts, %s exclusions to %s\n",
		strconv.Itoa(len(ds.Units)), strconv.Itoa(len(ds.Contributions)), strconv.Itoa(len(ds.Accounts)), strconv.Itoa(len(ds.Exclusions)), *out)
	return nil
}
