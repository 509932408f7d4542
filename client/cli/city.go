package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"connectrpc.com/connect"

	"wengang/client"
	"wengang/internal/protoconv"
	"wengang/policy/civil"
	"wengang/policy/money"
	wengangv1 "wengang/proto/wengang/v1"
)

// CityCommands returns the commands city administrators and approvers run
// against the city: intake (received batches and cross-county conflicts),
// round (publicity rounds) and objection-city (objections raised during
// publicity).
func CityCommands() []Command {
	return []Command{
		{Name: "intake", Summary: "接收: list received batches or a batch's items | conflicts | resolve a cross-county conflict", Run: intakeCmd},
		{Name: "round", Summary: "公示批次: create | approve | show | list | release a publicity round", Run: roundCmd},
		{Name: "objection-city", Summary: "公示异议: record | list | resolve an objection raised during publicity", Run: cityObjectionCmd},
	}
}

// cityFlags are the flags every city command takes.
type cityFlags struct {
	city, token, ca *string
}

func addCityFlags(fs *flag.FlagSet) cityFlags {
	return cityFlags{
		city:  fs.String("city", "", "city server URL, such as https://city.example:8443"),
		token: fs.String("token", os.Getenv("WENGANG_TOKEN"), "bearer token (default $WENGANG_TOKEN)"),
		ca:    fs.String("ca", "", "CA certificate to trust for an https:// city"),
	}
}

func (f cityFlags) client() (*client.City, error) {
	if *f.city == "" {
		return nil, fmt.Errorf("%w: --city is required", ErrUsage)
	}
	if *f.token == "" {
		return nil, fmt.Errorf("%w: --token (or $WENGANG_TOKEN) is required", ErrUsage)
	}
	return client.NewCity(*f.city, client.Options{Token: *f.token, CAFile: *f.ca})
}

// enumName is an enum value's name without its prefix, in lower case.
func enumName(s fmt.Stringer, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), prefix))
}

func tallyText(t *wengangv1.Tally) string {
	return fmt.Sprintf("%d (%s 元)", t.GetCount(), money.FormatYuan(t.GetAmountFen()))
}

func intakeCmd(env Env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: intake list | conflicts | resolve", ErrUsage)
	}
	action := args[0]
	fs := newFlags(env, "intake "+action)
	cf := addCityFlags(fs)
	counties := fs.String("counties", "", "list, conflicts: only these counties, comma separated")
	county := fs.String("county", "", "list: with --batch, the batch's county")
	batch := fs.String("batch", "", "list: list this batch's items instead of the batches")
	open := fs.Bool("open", false, "conflicts: open conflicts only")
	conflict := fs.String("conflict", "", "resolve: the conflict id")
	keepCounty := fs.String("keep-county", "", "resolve: the county whose item goes on")
	keepBatch := fs.String("keep-batch", "", "resolve: its batch")
	reason := fs.String("reason", "", "resolve: the written reason (required)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	switch action {
	case "list":
		if *batch != "" {
			if *county == "" {
				return fmt.Errorf("%w: --batch needs --county", ErrUsage)
			}
			return listItems(env, tw, c, *county, *batch)
		}
		token := ""
		fmt.Fprintln(tw, "county\tbatch\titems\ttotal (元)\treceived\tby state")
		for {
			res, err := c.Intake.ListReceivedBatches(env.Ctx, connect.NewRequest(&wengangv1.ListReceivedBatchesRequest{Counties: splitList(*counties), PageToken: token}))
			if err != nil {
				return reportRPC(env, err)
			}
			for _, b := range res.Msg.GetBatches() {
				var states []string
				for _, s := range b.GetItemsByState() {
					states = append(states, fmt.Sprintf("%s %d", enumName(s.GetState(), "ITEM_STATE_"), s.GetTally().GetCount()))
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", b.GetCounty(), b.GetBatchId(), b.GetItemCount(), money.FormatYuan(b.GetTotalFen()),
					b.GetReceivedAt().AsTime().Format("2006-01-02 15:04"), strings.Join(states, ", "))
			}
			if token = res.Msg.GetNextPageToken(); token == "" {
				return nil
			}
		}
	case "conflicts":
		req := &wengangv1.ListConflictsRequest{Counties: splitList(*counties)}
		if *open {
			req.State = wengangv1.ConflictState_CONFLICT_STATE_OPEN
		}
		fmt.Fprintln(tw, "conflict\tuscc\tstate\tparties\tkept\treason")
		for {
			res, err := c.Intake.ListConflicts(env.Ctx, connect.NewRequest(req))
			if err != nil {
				return reportRPC(env, err)
			}
			for _, cf := range res.Msg.GetConflicts() {
				writeConflict(tw, cf)
			}
			if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
				return nil
			}
		}
	case "resolve":
		if *conflict == "" || *keepCounty == "" || *keepBatch == "" {
			return fmt.Errorf("%w: --conflict, --keep-county and --keep-batch are required", ErrUsage)
		}
		res, err := c.Intake.ResolveConflict(env.Ctx, connect.NewRequest(&wengangv1.ResolveConflictRequest{
			ConflictId: *conflict, KeepCounty: *keepCounty, KeepBatchId: *keepBatch, Reason: *reason}))
		if err != nil {
			return reportRPC(env, err)
		}
		fmt.Fprintln(tw, "conflict\tuscc\tstate\tparties\tkept\treason")
		writeConflict(tw, res.Msg.GetConflict())
		return nil
	}
	return fmt.Errorf("%w: intake %s: want list, conflicts or resolve", ErrUsage, action)
}

func writeConflict(w io.Writer, c *wengangv1.Conflict) {
	var parties []string
	for _, p := range c.GetParties() {
		parties = append(parties, fmt.Sprintf("%s %s %s %s元", p.GetCounty(), p.GetBatchId(), p.GetName(), money.FormatYuan(p.GetRefundFen())))
	}
	kept := ""
	if c.GetKeptCounty() != "" {
		kept = c.GetKeptCounty() + " " + c.GetKeptBatchId()
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", c.GetConflictId(), c.GetUscc(), enumName(c.GetState(), "CONFLICT_STATE_"), strings.Join(parties, "; "), kept, c.GetReason())
}

func listItems(env Env, w io.Writer, c *client.City, county, batch string) error {
	req := &wengangv1.ListReceivedItemsRequest{Counties: []string{county}, BatchId: batch}
	fmt.Fprintln(w, "uscc\tname\trefund (元)\tstate\tround\tinstruction\trejections")
	for {
		res, err := c.Intake.ListReceivedItems(env.Ctx, connect.NewRequest(req))
		if err != nil {
			return reportRPC(env, err)
		}
		for _, it := range res.Msg.GetItems() {
			var rej []string
			for _, r := range it.GetRejections() {
				rej = append(rej, enumName(r.GetCode(), "REJECTION_CODE_")+": "+r.GetDetail())
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.GetItem().GetUscc(), it.GetItem().GetName(), money.FormatYuan(it.GetRecomputedRefundFen()),
				enumName(it.GetState(), "ITEM_STATE_"), it.GetRoundId(), it.GetInstructionId(), strings.Join(rej, "; "))
		}
		if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
			return nil
		}
	}
}

func roundCmd(env Env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: round create | approve | show | list | release", ErrUsage)
	}
	action := args[0]
	fs := newFlags(env, "round "+action)
	cf := addCityFlags(fs)
	round := fs.String("round", "", "approve, show, release: the round id")
	title := fs.String("title", "", "create: the title shown on the portal")
	batches := fs.String("batches", "", "create: received batches as COUNTY/BATCH, comma separated")
	start := fs.String("start", "", "create: first day of publicity, YYYY-MM-DD")
	office := fs.String("office", "", "create: the office taking objections (受理科室)")
	phone := fs.String("phone", "", "create: its phone")
	address := fs.String("address", "", "create: its address")
	email := fs.String("email", "", "create: its email")
	key := fs.String("key", "", "create: idempotency key (default: a new one; reuse it to retry)")
	comment := fs.String("comment", "", "approve: the approver's note")
	counties := fs.String("counties", "", "list: only rounds of these counties, comma separated")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	switch action {
	case "create":
		req := &wengangv1.CreateRoundRequest{Title: *title, IdempotencyKey: *key,
			ObjectionContact: &wengangv1.ObjectionContact{Office: *office, Phone: *phone, Address: *address, Email: *email}}
		if req.IdempotencyKey == "" {
			req.IdempotencyKey = client.NewKey()
		}
		for _, b := range splitList(*batches) {
			county, id, ok := strings.Cut(b, "/")
			if !ok {
				return fmt.Errorf("%w: --batches: %q is not COUNTY/BATCH", ErrUsage, b)
			}
			req.Batches = append(req.Batches, &wengangv1.BatchRef{County: county, BatchId: id})
		}
		d, err := civil.ParseDate(*start)
		if err != nil {
			return fmt.Errorf("%w: --start: %v", ErrUsage, err)
		}
		req.StartDate = protoconv.Date(d)
		res, err := c.Publicity.CreateRound(env.Ctx, connect.NewRequest(req))
		if err != nil {
			return reportRPC(env, err)
		}
		writeRound(env.Stdout, res.Msg.GetRound())
		return nil
	case "approve":
		if *round == "" {
			return fmt.Errorf("%w: --round is required", ErrUsage)
		}
		res, err := c.Publicity.ApproveRound(env.Ctx, connect.NewRequest(&wengangv1.ApproveRoundRequest{RoundId: *round, Comment: *comment}))
		if err != nil {
			return reportRPC(env, err)
		}
		writeRound(env.Stdout, res.Msg.GetRound())
		return nil
	case "show":
		if *round == "" {
			return fmt.Errorf("%w: --round is required", ErrUsage)
		}
		res, err := c.Publicity.GetRound(env.Ctx, connect.NewRequest(&wengangv1.GetRoundRequest{RoundId: *round}))
		if err != nil {
			return reportRPC(env, err)
		}
		writeRound(env.Stdout, res.Msg.GetRound())
		fmt.Fprintln(env.Stdout)
		tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
		defer tw.Flush()
		fmt.Fprintln(tw, "county\tuscc\tname\tamount (元)\tstate\tobjection\tinstruction")
		req := &wengangv1.ListRoundEntriesRequest{RoundId: *round}
		for {
			res, err := c.Publicity.ListRoundEntries(env.Ctx, connect.NewRequest(req))
			if err != nil {
				return reportRPC(env, err)
			}
			for _, e := range res.Msg.GetEntries() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.GetCounty(), e.GetUscc(), e.GetName(), money.FormatYuan(e.GetAmountFen()),
					enumName(e.GetState(), "ITEM_STATE_"), e.GetObjectionId(), e.GetInstructionId())
			}
			if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
				return nil
			}
		}
	case "list":
		tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
		defer tw.Flush()
		fmt.Fprintln(tw, "round\tstate\tstart\tend\tentries\ttotal (元)\topen objections\ttitle")
		req := &wengangv1.ListRoundsRequest{Counties: splitList(*counties)}
		for {
			res, err := c.Publicity.ListRounds(env.Ctx, connect.NewRequest(req))
			if err != nil {
				return reportRPC(env, err)
			}
			for _, r := range res.Msg.GetRounds() {
				s, _ := protoconv.ToDate(r.GetStartDate())
				e, _ := protoconv.ToDate(r.GetEndDate())
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\n", r.GetRoundId(), enumName(r.GetState(), "ROUND_STATE_"), s, e,
					r.GetEntryCount(), money.FormatYuan(r.GetTotalFen()), r.GetOpenObjectionCount(), r.GetTitle())
			}
			if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
				return nil
			}
		}
	case "release":
		if *round == "" {
			return fmt.Errorf("%w: --round is required", ErrUsage)
		}
		res, err := c.Publicity.ReleaseRound(env.Ctx, connect.NewRequest(&wengangv1.ReleaseRoundRequest{RoundId: *round}))
		if err != nil {
			return reportRPC(env, err)
		}
		writeRound(env.Stdout, res.Msg.GetRound())
		fmt.Fprintf(env.Stdout, "released (已拨付): %s\nwaiting on objections (异议待处理): %s\n\n", tallyText(res.Msg.GetReleased()), tallyText(res.Msg.GetWaiting()))
		tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
		defer tw.Flush()
		fmt.Fprintln(tw, "funding request\tcounty\tinstructions\ttotal (元)\tstate")
		for _, f := range res.Msg.GetFundingRequests() {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", f.GetFundingRequestId(), f.GetCounty(), f.GetInstructionCount(), money.FormatYuan(f.GetTotalFen()),
				enumName(f.GetState(), "FUNDING_STATE_"))
		}
		return nil
	}
	return fmt.Errorf("%w: round %s: want create, approve, show, list or release", ErrUsage, action)
}

func writeRound(w io.Writer, r *wengangv1.Round) {
	s, _ := protoconv.ToDate(r.GetStartDate())
	e, _ := protoconv.ToDate(r.GetEndDate())
	fmt.Fprintf(w, "round %s: %s\n", r.GetRoundId(), r.GetTitle())
	fmt.Fprintf(w, "state %s; publicity %s to %s (%d working days); counties %s\n", enumName(r.GetState(), "ROUND_STATE_"), s, e, r.GetWorkdays(), strings.Join(r.GetCounties(), ", "))
	fmt.Fprintf(w, "entries %d (%s 元); open objections %d; built by %s", r.GetEntryCount(), money.FormatYuan(r.GetTotalFen()), r.GetOpenObjectionCount(), r.GetBuiltBy())
	if r.GetApprovedBy() != "" {
		fmt.Fprintf(w, "; approved by %s", r.GetApprovedBy())
	}
	if r.GetReleasedBy() != "" {
		fmt.Fprintf(w, "; released by %s", r.GetReleasedBy())
	}
	fmt.Fprintln(w)
}

func cityObjectionCmd(env Env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: objection-city record | list | resolve", ErrUsage)
	}
	action := args[0]
	fs := newFlags(env, "objection-city "+action)
	cf := addCityFlags(fs)
	round := fs.String("round", "", "record, list: the round id")
	uscc := fs.String("uscc", "", "record: the enterprise objected to")
	text := fs.String("text", "", "record: what was said (required)")
	contactName := fs.String("contact-name", "", "record: who objected")
	contactPhone := fs.String("contact-phone", "", "record: their phone")
	channel := fs.String("channel", "phone", "record: phone, counter, sms, portal or other")
	key := fs.String("key", "", "record: idempotency key (default: a new one; reuse it to retry)")
	open := fs.Bool("open", false, "list: open objections only")
	objection := fs.String("objection", "", "resolve: the objection id")
	resolution := fs.String("resolution", "", "resolve: upheld or dismissed")
	reason := fs.String("reason", "", "resolve: the written reason (required)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	header := "objection\tround\tcounty\tuscc\tname\tstate\tchannel\treceived\ttext\tresolution"
	switch action {
	case "record":
		if *round == "" || *uscc == "" {
			return fmt.Errorf("%w: --round and --uscc are required", ErrUsage)
		}
		ch, ok := wengangv1.ResponseChannel_value["RESPONSE_CHANNEL_"+strings.ToUpper(*channel)]
		if !ok || ch == 0 {
			return fmt.Errorf("%w: --channel %q: want phone, counter, sms, portal or other", ErrUsage, *channel)
		}
		k := *key
		if k == "" {
			k = client.NewKey()
		}
		res, err := c.Publicity.RecordObjection(env.Ctx, connect.NewRequest(&wengangv1.RecordObjectionRequest{
			RoundId: *round, Uscc: *uscc, Text: *text, ContactName: *contactName, ContactPhone: *contactPhone,
			Channel: wengangv1.ResponseChannel(ch), IdempotencyKey: k}))
		if err != nil {
			return reportRPC(env, err)
		}
		fmt.Fprintln(tw, header)
		writeObjection(tw, res.Msg.GetObjection())
		return nil
	case "list":
		req := &wengangv1.ListObjectionsRequest{RoundId: *round}
		if *open {
			req.State = wengangv1.ObjectionState_OBJECTION_STATE_OPEN
		}
		fmt.Fprintln(tw, header)
		for {
			res, err := c.Publicity.ListObjections(env.Ctx, connect.NewRequest(req))
			if err != nil {
				return reportRPC(env, err)
			}
			for _, o := range res.Msg.GetObjections() {
				writeObjection(tw, o)
			}
			if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
				return nil
			}
		}
	case "resolve":
		if *objection == "" {
			return fmt.Errorf("%w: --objection is required", ErrUsage)
		}
		var st wengangv1.ObjectionState
		switch *resolution {
		case "upheld":
			st = wengangv1.ObjectionState_OBJECTION_STATE_UPHELD
		case "dismissed":
			st = wengangv1.ObjectionState_OBJECTION_STATE_DISMISSED
		default:
			return fmt.Errorf("%w: --resolution upheld or dismissed is required", ErrUsage)
		}
		res, err := c.Publicity.ResolveObjection(env.Ctx, connect.NewRequest(&wengangv1.PublicityServiceResolveObjectionRequest{
			ObjectionId: *objection, Resolution: st, Reason: *reason}))
		if err != nil {
			return reportRPC(env, err)
		}
		fmt.Fprintln(tw, header)
		writeObjection(tw, res.Msg.GetObjection())
		return nil
	}
	return fmt.Errorf("%w: objection-city %s: want record, list or resolve", ErrUsage, action)
}

func writeObjection(w io.Writer, o *wengangv1.Objection) {
	res := ""
	if o.GetResolvedBy() != "" {
		res = o.GetResolvedBy() + ": " + o.GetResolutionReason()
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.GetObjectionId(), o.GetRoundId(), o.GetCounty(), o.GetUscc(), o.GetName(),
		enumName(o.GetState(), "OBJECTION_STATE_"), enumName(o.GetChannel(), "RESPONSE_CHANNEL_"),
		o.GetReceivedAt().AsTime().Format("2006-01-02 15:04"), o.GetText(), res)
}
