package access

// Source says where the domain of a request comes from.
type Source int

// Sources of a request's domain.
const (
	// FromCity: the request acts in the city domain.
	FromCity Source = iota + 1
	// FromCounty: the string field Rule.Field names one county; it must be
	// set (and not "city").
	FromCounty
	// FromCounties: the repeated string field Rule.Field names counties,
	// each of which must be allowed; empty means every domain the caller
	// holds its role in (a token's domain; every county of a node's
	// certificate), which handlers read as "every county the caller may
	// read".
	FromCounties
	// FromDomain: the string field Rule.Field names "city" or a county
	// (the audit log of that domain); it must be set.
	FromDomain
)

// Rule is what one procedure means to the policy: an action on an object,
// in the domain its request names.
type Rule struct {
	Object string
	Action string
	Source Source
	// Field is the request field holding the domain for FromCounty,
	// FromCounties and FromDomain: a field name, or a dotted path through
	// message fields ("batch.county").
	Field string
}

// The objects and actions of the policy (policy.csv grants them to roles).
//
//	object          actions                         what it stands for
//	dataset         read, write                     imported source files (county node)
//	screening       read, write                     screening runs and their results and exports
//	review          read, write                     reviewers' exclusions, reinstatements, cleared holds
//	notification    read, write                     SMS notifications to enterprises
//	response        read, write, resolve            enterprises' confirmations and objections; resolving an objection
//	batch           read, write                     sealed batches
//	unit_status     read                            each unit's status, mirrored from the city's decisions
//	account         write                           correcting a returned payment's account
//	audit           read                            the audit log (node and city)
//	sync            read, write                     the node–city channel (pull decisions; push batches, corrections, reports)
//	intake          read                            batches and items the city received
//	conflict        read, resolve                   cross-county duplicates
//	round           read, write, approve, release   publicity rounds (公示批次)
//	objection       read, write, resolve            objections during publicity
//	progress        read                            the progress dashboard
//	instruction     read, ack, report, export       payment instructions; results (also pain.002); pain.001 export
//	funding         read, confirm                   funding requests (资金拨付)
//	reconciliation  read                            reconciliation totals (对账)
//	portal          read, write                     the public portal; objections from the public
const (
	ActRead    = "read"
	ActWrite   = "write"
	ActResolve = "resolve"
	ActApprove = "approve"
	ActRelease = "release"
	ActAck     = "ack"
	ActReport  = "report"
	ActExport  = "export"
	ActConfirm = "confirm"
)

// county, counties, domain and city build the rules below.
func county(obj, act string) Rule      { return Rule{obj, act, FromCounty, "county"} }
func countyAt(obj, act, f string) Rule { return Rule{obj, act, FromCounty, f} }
func counties(obj, act string) Rule    { return Rule{obj, act, FromCounties, "counties"} }
func city(obj, act string) Rule        { return Rule{obj, act, FromCity, ""} }
func domain(obj, act string) Rule      { return Rule{obj, act, FromDomain, "domain"} }

// Rules returns the rule of every procedure of every wengang.v1 service,
// keyed by procedure ("/wengang.v1.ImportService/Import"). A procedure
// without a rule is denied to everyone.
func Rules() map[string]Rule {
	return map[string]Rule{
		// County node.
		"/wengang.v1.ImportService/Import":       countyAt("dataset", ActWrite, "header.county"),
		"/wengang.v1.ImportService/SealDataset":  county("dataset", ActWrite),
		"/wengang.v1.ImportService/GetDataset":   county("dataset", ActRead),
		"/wengang.v1.ImportService/ListDatasets": county("dataset", ActRead),

		"/wengang.v1.ScreeningService/RunScreening":   county("screening", ActWrite),
		"/wengang.v1.ScreeningService/GetScreening":   county("screening", ActRead),
		"/wengang.v1.ScreeningService/ListScreenings": county("screening", ActRead),
		"/wengang.v1.ScreeningService/ListResults":    county("screening", ActRead),
		"/wengang.v1.ScreeningService/ExportResults":  county("screening", ActRead),

		"/wengang.v1.ReviewService/ExcludeUnit":   county("review", ActWrite),
		"/wengang.v1.ReviewService/ReinstateUnit": county("review", ActWrite),
		"/wengang.v1.ReviewService/ResolveHold":   county("review", ActWrite),
		"/wengang.v1.ReviewService/ListReviews":   county("review", ActRead),

		"/wengang.v1.NotificationService/NotifyUnits":       county("notification", ActWrite),
		"/wengang.v1.NotificationService/ListNotifications": county("notification", ActRead),
		"/wengang.v1.NotificationService/RecordResponse":    county("response", ActWrite),
		"/wengang.v1.NotificationService/ListResponses":     county("response", ActRead),
		"/wengang.v1.NotificationService/ResolveObjection":  county("response", ActResolve),

		"/wengang.v1.BatchService/SealBatch":        county("batch", ActWrite),
		"/wengang.v1.BatchService/GetBatch":         county("batch", ActRead),
		"/wengang.v1.BatchService/ListBatches":      county("batch", ActRead),
		"/wengang.v1.BatchService/ListUnitStatuses": county("unit_status", ActRead),
		"/wengang.v1.BatchService/CorrectAccount":   county("account", ActWrite),

		// Node and city.
		"/wengang.v1.AuditService/ListAuditEntries": domain("audit", ActRead),
		"/wengang.v1.AuditService/VerifyAuditChain": domain("audit", ActRead),

		// City, called by nodes.
		"/wengang.v1.SyncService/PushBatch":             countyAt("sync", ActWrite, "batch.county"),
		"/wengang.v1.SyncService/PullDecisions":         counties("sync", ActRead),
		"/wengang.v1.SyncService/PushAccountCorrection": county("sync", ActWrite),
		"/wengang.v1.SyncService/ReportScreening":       countyAt("sync", ActWrite, "report.county"),

		// City.
		"/wengang.v1.IntakeService/ListReceivedBatches": counties("intake", ActRead),
		"/wengang.v1.IntakeService/GetReceivedBatch":    county("intake", ActRead),
		"/wengang.v1.IntakeService/ListReceivedItems":   counties("intake", ActRead),
		"/wengang.v1.IntakeService/ListConflicts":       counties("conflict", ActRead),
		// A conflict spans counties: resolving it is the city's decision
		// (keep_county is the choice, not the scope).
		"/wengang.v1.IntakeService/ResolveConflict": city("conflict", ActResolve),

		"/wengang.v1.PublicityService/CreateRound":      city("round", ActWrite),
		"/wengang.v1.PublicityService/ApproveRound":     city("round", ActApprove),
		"/wengang.v1.PublicityService/GetRound":         city("round", ActRead),
		"/wengang.v1.PublicityService/ListRounds":       counties("round", ActRead),
		"/wengang.v1.PublicityService/ListRoundEntries": city("round", ActRead),
		"/wengang.v1.PublicityService/RecordObjection":  city("objection", ActWrite),
		"/wengang.v1.PublicityService/ListObjections":   city("objection", ActRead),
		"/wengang.v1.PublicityService/ResolveObjection": city("objection", ActResolve),
		"/wengang.v1.PublicityService/ReleaseRound":     city("round", ActRelease),

		"/wengang.v1.ProgressService/GetProgress": counties("progress", ActRead),

		"/wengang.v1.FinanceService/PullInstructions":    counties("instruction", ActRead),
		"/wengang.v1.FinanceService/ListInstructions":    counties("instruction", ActRead),
		"/wengang.v1.FinanceService/AckInstructions":     city("instruction", ActAck),
		"/wengang.v1.FinanceService/ReportResults":       city("instruction", ActReport),
		"/wengang.v1.FinanceService/ListFundingRequests": counties("funding", ActRead),
		"/wengang.v1.FinanceService/ConfirmFunding":      city("funding", ActConfirm),
		"/wengang.v1.FinanceService/GetReconciliation":   counties("reconciliation", ActRead),
		"/wengang.v1.FinanceService/ExportPain001":       city("instruction", ActExport),
		"/wengang.v1.FinanceService/ImportPain002":       city("instruction", ActReport),

		// Public: the portal acts in the city domain (its county field is
		// a filter of public data, not a scope).
		"/wengang.v1.PortalService/ListPublicRounds": city("portal", ActRead),
		"/wengang.v1.PortalService/ListPublicity":    city("portal", ActRead),
		"/wengang.v1.PortalService/SubmitObjection":  city("portal", ActWrite),
	}
}
