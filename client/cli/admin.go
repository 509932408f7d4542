package cli

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"wengang/internal/authn"
	"wengang/internal/devcert"
	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/policy/access"
)

// Admin returns the administrators' commands that work on a database or on
// files rather than through a server: token (bearer tokens) and certs
// (development certificates).
func Admin() []Command {
	return []Command{
		{Name: "token", Summary: "令牌: create, revoke and list bearer tokens in a node's or the city's database", Run: tokenCmd},
		{Name: "certs", Summary: "证书: make a development CA, the city's and each node's certificates", Run: certsCmd},
	}
}

const tokenUsage = "token create --db URL --role ROLE --domain DOMAIN [--name NAME] [--ttl 720h] | token revoke --db URL --id ID | token list --db URL"

func tokenCmd(env Env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", ErrUsage, tokenUsage)
	}
	switch args[0] {
	case "create":
		return tokenCreate(env, args[1:])
	case "revoke":
		return tokenRevoke(env, args[1:])
	case "list":
		return tokenList(env, args[1:])
	case "-h", "--help", "help":
		fmt.Fprintln(env.Stdout, "usage: wengang "+tokenUsage)
		return nil
	}
	return fmt.Errorf("%w: unknown subcommand %q; %s", ErrUsage, args[0], tokenUsage)
}

// openTokens opens the database at url and checks that it is migrated; the
// context it returns names the operator for the audit log.
func openTokens(env Env, url string) (*authn.Tokens, context.Context, func(), error) {
	if url == "" {
		return nil, nil, nil, fmt.Errorf("%w: --db is required: the node's or the city's database URL", ErrUsage)
	}
	pool, err := pg.Open(env.Ctx, url)
	if err != nil {
		return nil, nil, nil, err
	}
	tokens := &authn.Tokens{DB: pool}
	if err := tokens.Ready(env.Ctx); err != nil {
		pool.Close()
		return nil, nil, nil, err
	}
	operator := "unknown"
	if u, err := user.Current(); err == nil {
		operator = u.Username
	}
	ctx := access.WithPrincipal(env.Ctx, access.System("wengang token ("+operator+")"))
	return tokens, ctx, pool.Close, nil
}

func tokenCreate(env Env, args []string) error {
	fs := newFlags(env, "token create")
	db := fs.String("db", "", "database URL of the node or the city (already migrated)")
	role := fs.String("role", "", "role: "+roleList())
	domain := fs.String("domain", "", `domain: "city" or a county code such as 371502`)
	name := fs.String("name", "", "whom the token is for, such as a person's name (shown in the audit log)")
	ttl := fs.Duration("ttl", 720*time.Hour, "how long the token is valid")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	if *role == "" || *domain == "" {
		return fmt.Errorf("%w: --role and --domain are required", ErrUsage)
	}
	if err := access.ValidAssignment(*role, *domain); err != nil {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	tokens, ctx, done, err := openTokens(env, *db)
	if err != nil {
		return err
	}
	defer done()
	t, secret, err := tokens.Create(ctx, *role, *domain, *name, *ttl)
	if errors.Is(err, fault.ErrInvalid) {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, secret)
	fmt.Fprintf(env.Stderr, "token %d: %s in %s, valid until %s. It is shown once and will not be shown again: keep it now (令牌只显示这一次，请立即妥善保存).\n",
		t.ID, t.Role, t.Domain, t.ExpiresAt.Local().Format(time.RFC3339))
	return nil
}

func tokenRevoke(env Env, args []string) error {
	fs := newFlags(env, "token revoke")
	db := fs.String("db", "", "database URL of the node or the city")
	id := fs.String("id", "", "the token's id (see token list)")
	if err := parse(fs, args); err != nil {
		return err
	}
	n, err := strconv.ParseInt(*id, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("%w: --id: want a token id such as 7", ErrUsage)
	}
	tokens, ctx, done, err := openTokens(env, *db)
	if err != nil {
		return err
	}
	defer done()
	t, err := tokens.Revoke(ctx, n)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "token %d (%s in %s) revoked at %s\n", t.ID, t.Role, t.Domain, t.RevokedAt.Local().Format(time.RFC3339))
	return nil
}

func tokenList(env Env, args []string) error {
	fs := newFlags(env, "token list")
	db := fs.String("db", "", "database URL of the node or the city")
	if err := parse(fs, args); err != nil {
		return err
	}
	tokens, ctx, done, err := openTokens(env, *db)
	if err != nil {
		return err
	}
	defer done()
	list, err := tokens.List(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tROLE\tDOMAIN\tNAME\tSTATE\tCREATED\tEXPIRES\tCREATED BY")
	for _, t := range list {
		state := "active"
		switch {
		case !t.RevokedAt.IsZero():
			state = "revoked"
		case !now.Before(t.ExpiresAt):
			state = "expired"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Role, t.Domain, t.Name, state,
			t.CreatedAt.Local().Format(time.DateTime), t.ExpiresAt.Local().Format(time.DateTime), t.CreatedBy)
	}
	return w.Flush()
}

func roleList() string {
	var rs []string
	for _, r := range access.Roles() {
		if r.Placement != access.ByCertificate && r.Placement != access.Unassigned {
			rs = append(rs, r.Name)
		}
	}
	return strings.Join(rs, ", ")
}

// nodesFlag collects --nodes NAME=COUNTY,COUNTY flags.
type nodesFlag []devcert.Node

func (f *nodesFlag) String() string {
	var s []string
	for _, n := range *f {
		s = append(s, n.Name+"="+strings.Join(n.Counties, ","))
	}
	return strings.Join(s, " ")
}

func (f *nodesFlag) Set(v string) error {
	name, counties, ok := strings.Cut(v, "=")
	if !ok || name == "" || len(splitList(counties)) == 0 {
		return fmt.Errorf("want NAME=COUNTY[,COUNTY...], such as node1=371502,371521")
	}
	*f = append(*f, devcert.Node{Name: name, Counties: splitList(counties)})
	return nil
}

func certsCmd(env Env, args []string) error {
	fs := newFlags(env, "certs")
	out := fs.String("out", "", "directory to write into (an existing CA there is reused)")
	var nodes nodesFlag
	fs.Var(&nodes, "nodes", "a node and its counties, NAME=COUNTY,COUNTY; repeat for each node")
	hosts := fs.String("hosts", "", "extra DNS names or IPs of the servers, comma-separated (localhost, 127.0.0.1 and ::1 are always in)")
	validity := fs.Duration("validity", 365*24*time.Hour, "validity of the server and client certificates")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", ErrUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	files, err := devcert.Generate(*out, devcert.Options{Nodes: nodes, Hosts: splitList(*hosts), Validity: *validity})
	if errors.Is(err, fault.ErrInvalid) {
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if err != nil {
		return err
	}
	ca := "new CA"
	if files.ReusedCA {
		ca = "existing CA, kept"
	}
	fmt.Fprintf(env.Stdout, "%s\t%s\n%s\t%s (private: keep it safe)\n", files.CA, ca, files.CAKey, "CA key")
	fmt.Fprintf(env.Stdout, "%s\t%s\n%s\t%s\n", files.City, "city server certificate", files.CityKey, "city server key")
	names := make([]string, 0, len(files.Nodes))
	for name := range files.Nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		nf := files.Nodes[name]
		var counties []string
		for _, n := range nodes {
			if n.Name == name {
				counties = n.Counties
			}
		}
		fmt.Fprintf(env.Stdout, "%s\t%s server certificate\n%s\t%s server key\n", nf.Server, name, nf.ServerKey, name)
		fmt.Fprintf(env.Stdout, "%s\t%s client certificate for counties %s\n%s\t%s client key\n", nf.Client, name, strings.Join(counties, ","), nf.ClientKey, name)
	}
	return nil
}
