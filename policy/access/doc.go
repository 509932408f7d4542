// Package access is the access policy (权限): who may call which RPC in
// which domain. Domains are "city" and county codes; roles are assigned in
// a domain; the Casbin model and default policy are data in this package,
// and every RPC passes one enforcer check, default deny.
package access
