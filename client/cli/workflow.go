package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/client"
	"wengang/policy/money"
	wengangv1 "wengang/proto/wengang/v1"
)

func reviewCmd(env Env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: review exclude | reinstate | resolve-hold", ErrUsage)
	}
	action := args[0]
	fs := newFlags(env, "review "+action)
	nf := addNodeFlags(fs)
	screening := fs.String("screening", "", "screening id")
	uscc := fs.String("uscc", "", "the unit's USCC")
	reason := fs.String("reason", "", "the written reason (required)")
	accountKind := fs.String("account-kind", "", "resolve-hold: corporate or social_insurance")
	bank := fs.String("bank", "", "resolve-hold: bank (开户行)")
	bankCode := fs.String("bank-code", "", "resolve-hold: bank code (联行号)")
	accountNo := fs.String("account-no", "", "resolve-hold: account number")
	accountName := fs.String("account-name", "", "resolve-hold: account name (户名)")
	size := fs.String("size", "", "resolve-hold: size class large, medium, small or micro")
	verified := fs.Bool("uscc-verified", false, "resolve-hold: the USCC was checked and is right despite its check character")
	corrected := fs.String("corrected-uscc", "", "resolve-hold: the right USCC, when the file's was mistyped")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *screening == "" || *uscc == "" {
		return fmt.Errorf("%w: --screening and --uscc are required", ErrUsage)
	}
	n, err := nf.client()
	if err != nil {
		return err
	}
	key := client.NewKey()
	var review *wengangv1.Review
	var result *wengangv1.ScreeningResult
	switch action {
	case "exclude":
		res, err := n.Review.ExcludeUnit(env.Ctx, connect.NewRequest(&wengangv1.ExcludeUnitRequest{County: *nf.county, ScreeningId: *screening, Uscc: *uscc, Reason: *reason, IdempotencyKey: key}))
		if err != nil {
			return reportRPC(env, err)
		}
		review, result = res.Msg.GetReview(), res.Msg.GetResult()
	case "reinstate":
		res, err := n.Review.ReinstateUnit(env.Ctx, connect.NewRequest(&wengangv1.ReinstateUnitRequest{County: *nf.county, ScreeningId: *screening, Uscc: *uscc, Reason: *reason, IdempotencyKey: key}))
		if err != nil {
			return reportRPC(env, err)
		}
		review, result = res.Msg.GetReview(), res.Msg.GetResult()
	case "resolve-hold":
		fact := &wengangv1.HoldFact{}
		switch {
		case *accountNo != "":
			kind, ok := wengangv1.AccountKind_value["ACCOUNT_KIND_"+strings.ToUpper(*accountKind)]
			if !ok {
				return fmt.Errorf("%w: --account-kind: want corporate or social_insurance", ErrUsage)
			}
			fact.Fact = &wengangv1.HoldFact_Account{Account: &wengangv1.Account{Kind: wengangv1.AccountKind(kind), Bank: *bank, BankCode: *bankCode, AccountNo: *accountNo, AccountName: *accountName}}
		case *size != "":
			v, ok := wengangv1.SizeClass_value["SIZE_CLASS_"+strings.ToUpper(*size)]
			if !ok {
				return fmt.Errorf("%w: --size: want large, medium, small or micro", ErrUsage)
			}
			fact.Fact = &wengangv1.HoldFact_SizeClass{SizeClass: wengangv1.SizeClass(v)}
		case *verified || *corrected != "":
			fact.Fact = &wengangv1.HoldFact_UsccVerification{UsccVerification: &wengangv1.UsccVerification{CorrectedUscc: *corrected}}
		default:
			return fmt.Errorf("%w: resolve-hold needs one fact: --account-no (with --account-kind, --bank, --account-name), --size, --uscc-verified or --corrected-uscc", ErrUsage)
		}
		res, err := n.Review.ResolveHold(env.Ctx, connect.NewRequest(&wengangv1.ResolveHoldRequest{County: *nf.county, ScreeningId: *screening, Uscc: *uscc, Fact: fact, Reason: *reason, IdempotencyKey: key}))
		if err != nil {
			return reportRPC(env, err)
		}
		review, result = res.Msg.GetReview(), res.Msg.GetResult()
	default:
		return fmt.Errorf("%w: review %q: want exclude, reinstate or resolve-hold", ErrUsage, action)
	}
	fmt.Fprintf(env.Stdout, "review %s: %s %s → %s, refund %s yuan\n", review.GetReviewId(), result.GetUscc(), result.GetName(),
		strings.ToLower(strings.TrimPrefix(result.GetDecision().String(), "DECISION_")), money.FormatYuan(result.GetRefundFen()))
	return nil
}

func notifyCmd(env Env, args []string) error {
	fs := newFlags(env, "notify")
	nf := addNodeFlags(fs)
	screening := fs.String("screening", "", "screening id")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *screening == "" {
		return fmt.Errorf("%w: --screening is required", ErrUsage)
	}
	n, err := nf.client()
	if err != nil {
		return err
	}
	res, err := n.Notification.NotifyUnits(env.Ctx, connect.NewRequest(&wengangv1.NotifyUnitsRequest{County: *nf.county, ScreeningId: *screening, Usccs: fs.Args()}))
	if err != nil {
		return reportRPC(env, err)
	}
	fmt.Fprintf(env.Stdout, "queued %d SMS (已排队), %d notified before, %d without a mobile number (无手机号)\n",
		res.Msg.GetQueuedCount(), res.Msg.GetAlreadyCount(), res.Msg.GetNoMobileCount())
	return nil
}

func respondCmd(env Env, args []string) error {
	fs := newFlags(env, "respond")
	nf := addNodeFlags(fs)
	screening := fs.String("screening", "", "screening id")
	uscc := fs.String("uscc", "", "the enterprise's USCC")
	kind := fs.String("kind", "", "confirmed or objected")
	text := fs.String("text", "", "what the enterprise said")
	channel := fs.String("channel", "phone", "sms, phone, portal, counter or other")
	if err := parse(fs, args); err != nil {
		return err
	}
	k, ok := wengangv1.EnterpriseResponseKind_value["ENTERPRISE_RESPONSE_KIND_"+strings.ToUpper(*kind)]
	if !ok || *screening == "" || *uscc == "" {
		return fmt.Errorf("%w: --screening, --uscc and --kind confirmed|objected are required", ErrUsage)
	}
	ch, ok := wengangv1.ResponseChannel_value["RESPONSE_CHANNEL_"+strings.ToUpper(*channel)]
	if !ok {
		return fmt.Errorf("%w: --channel %q", ErrUsage, *channel)
	}
	n, err := nf.client()
	if err != nil {
		return err
	}
	res, err := n.Notification.RecordResponse(env.Ctx, connect.NewRequest(&wengangv1.RecordResponseRequest{
		County: *nf.county, ScreeningId: *screening, Uscc: *uscc, Kind: wengangv1.EnterpriseResponseKind(k), Text: *text,
		Channel: wengangv1.ResponseChannel(ch), ReceivedAt: timestamppb.New(time.Now()), IdempotencyKey: client.NewKey(),
	}))
	if err != nil {
		return reportRPC(env, err)
	}
	fmt.Fprintf(env.Stdout, "response %s recorded (已记录)\n", res.Msg.GetResponse().GetResponseId())
	return nil
}

func objectionCmd(env Env, args []string) error {
	fs := newFlags(env, "objection")
	nf := addNodeFlags(fs)
	id := fs.String("response", "", "the objection's response id")
	resolution := fs.String("resolution", "", "upheld or dismissed")
	reason := fs.String("reason", "", "the written reason")
	if err := parse(fs, args); err != nil {
		return err
	}
	v, ok := wengangv1.ObjectionState_value["OBJECTION_STATE_"+strings.ToUpper(*resolution)]
	if !ok || *id == "" {
		return fmt.Errorf("%w: --response and --resolution upheld|dismissed are required", ErrUsage)
	}
	n, err := nf.client()
	if err != nil {
		return err
	}
	res, err := n.Notification.ResolveObjection(env.Ctx, connect.NewRequest(&wengangv1.NotificationServiceResolveObjectionRequest{
		County: *nf.county, ResponseId: *id, Resolution: wengangv1.ObjectionState(v), Reason: *reason,
	}))
	if err != nil {
		return reportRPC(env, err)
	}
	fmt.Fprintf(env.Stdout, "objection %s: %s\n", *id, strings.ToLower(strings.TrimPrefix(res.Msg.GetResponse().GetObjectionState().String(), "OBJECTION_STATE_")))
	return nil
}

func batchCmd(env Env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: batch seal | list", ErrUsage)
	}
	fs := newFlags(env, "batch "+args[0])
	nf := addNodeFlags(fs)
	screening := fs.String("screening", "", "seal: screening id")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	n, err := nf.client()
	if err != nil {
		return err
	}
	switch args[0] {
	case "seal":
		if *screening == "" {
			return fmt.Errorf("%w: --screening is required", ErrUsage)
		}
		res, err := n.Batch.SealBatch(env.Ctx, connect.NewRequest(&wengangv1.SealBatchRequest{County: *nf.county, ScreeningId: *screening, Usccs: fs.Args(), IdempotencyKey: client.NewKey()}))
		if err != nil {
			return reportRPC(env, err)
		}
		b := res.Msg.GetBatch()
		fmt.Fprintf(env.Stdout, "batch %s sealed (已封存): %d units, %s yuan; left out: %d objected, %d already batched, %d on hold\n",
			b.GetBatchId(), b.GetItemCount(), money.FormatYuan(b.GetTotalFen()), res.Msg.GetObjectedCount(), res.Msg.GetAlreadyBatchedCount(), res.Msg.GetHoldCount())
	case "list":
		tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "batch\tunits\tyuan\tstate\tpushes\tlast error")
		req := &wengangv1.ListBatchesRequest{County: *nf.county}
		for {
			res, err := n.Batch.ListBatches(env.Ctx, connect.NewRequest(req))
			if err != nil {
				return reportRPC(env, err)
			}
			for _, b := range res.Msg.GetBatches() {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\n", b.GetBatchId(), b.GetItemCount(), money.FormatYuan(b.GetTotalFen()),
					strings.ToLower(strings.TrimPrefix(b.GetState().String(), "BATCH_STATE_")), b.GetPushAttempts(), b.GetLastPushError())
			}
			if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		return tw.Flush()
	default:
		return fmt.Errorf("%w: batch %q: want seal or list", ErrUsage, args[0])
	}
	return nil
}

func statusCmd(env Env, args []string) error {
	fs := newFlags(env, "status")
	nf := addNodeFlags(fs)
	batch := fs.String("batch", "", "only this batch")
	uscc := fs.String("uscc", "", "only this unit")
	if err := parse(fs, args); err != nil {
		return err
	}
	n, err := nf.client()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "uscc\tname\tbatch\tstate\tyuan\treason")
	req := &wengangv1.ListUnitStatusesRequest{County: *nf.county, BatchId: *batch, Uscc: *uscc}
	for {
		res, err := n.Batch.ListUnitStatuses(env.Ctx, connect.NewRequest(req))
		if err != nil {
			return reportRPC(env, err)
		}
		for _, s := range res.Msg.GetStatuses() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.GetUscc(), s.GetName(), s.GetBatchId(),
				strings.ToLower(strings.TrimPrefix(s.GetState().String(), "ITEM_STATE_")), money.FormatYuan(s.GetRefundFen()), s.GetReason())
		}
		if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	return tw.Flush()
}
