// Package access is the access policy (权限): who may call which RPC in
// which domain. Domains are "city" and county codes; roles are assigned in
// a domain; the Casbin model and default policy are data in this package,
// and every RPC passes one enforcer check, default deny.
//
// The parts:
//
//   - model.conf: RBAC with domains. A role held in a county reaches only
//     that county; a role held in "city" reaches the city and every county
//     (it may do there only what it is granted: city roles read county
//     data, never write it).
//   - policy.csv: which role may do which action on which object (the
//     vocabulary is at Rules), and which role inherits which.
//   - Rules: every procedure of every wengang.v1 service mapped to an object,
//     an action and where its request names the domain.
//   - Enforcer: Allow (a principal, a procedure, a domain) and Authorize
//     (the domain taken from the request itself), which the one interceptor
//     (internal/authn) calls before any handler runs.
//
// This package imports no transport and no database.
package access
