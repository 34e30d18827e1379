package agentapi

import (
	"strings"
	"testing"
)

func TestSignatureCheck(t *testing.T) {
	sig := Signature{{"repo_id", TypeString}, {"size_mib", TypeInt}, {"sparse", TypeBool},
		{"params", TypeStruct}, {"ids", TypeStrings}}
	good := func() []any { return []any{"r1", int64(5), true, map[string]any{}, []any{"a", "b"}} }
	tests := []struct {
		name    string
		args    func() []any
		bad     int
		wantErr string // "" when the arguments fit
	}{
		{"fits", good, -1, ""},
		{"int as decimal string", func() []any { a := good(); a[1] = "2048"; return a }, -1, ""},
		{"Go int", func() []any { a := good(); a[1] = 7; return a }, -1, ""},
		{"Go string slice", func() []any { a := good(); a[4] = []string{"x"}; return a }, -1, ""},
		{"empty array", func() []any { a := good(); a[4] = []any{}; return a }, -1, ""},
		{"too few", func() []any { return good()[:4] }, -1,
			"takes 5 parameters (repo_id str, size_mib int, sparse bool, params struct, ids array of str), got 4"},
		{"too many", func() []any { return append(good(), "x") }, -1, "takes 5 parameters"},
		{"int for a string", func() []any { a := good(); a[0] = int64(1); return a }, 0, "parameter 1 (repo_id) must be a str"},
		{"text for an int", func() []any { a := good(); a[1] = "big"; return a }, 1, "parameter 2 (size_mib) must be a int"},
		{"string for a bool", func() []any { a := good(); a[2] = "true"; return a }, 2, "parameter 3 (sparse) must be a bool"},
		{"array for a struct", func() []any { a := good(); a[3] = []any{}; return a }, 3, "parameter 4 (params) must be a struct"},
		{"array holding an int", func() []any { a := good(); a[4] = []any{"a", int64(2)}; return a }, 4, "parameter 5 (ids) must be a array of str"},
		{"nil", func() []any { a := good(); a[0] = nil; return a }, 0, "parameter 1 (repo_id)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCheck(t, sig, tt.args(), tt.bad, tt.wantErr)
		})
	}
}

// TestSignaturesComplete: every method name the contract declares has a
// signature, and every signature a known name, so that neither end meets a
// method it cannot check.
func TestSignaturesComplete(t *testing.T) {
	names := []string{MethodGetAPIVersion, MethodEcho, MethodDiscoverServer, MethodDiscoverHardware,
		MethodTakeOwnership, MethodReleaseOwnership, MethodCreateRepository, MethodAddRepository,
		MethodDiscoverRepositories, MethodCreateVM, MethodGetVMConfig, MethodListVMs, MethodListVM,
		MethodStartVM, MethodStopVM, MethodDeleteVM, MethodSimSet, MethodDeleteRepository,
		MethodCreateVirtualDisk, MethodDeleteVirtualDisk, MethodImportVirtualDisk, MethodCreateServerPool,
		MethodJoinServerPool, MethodLeaveServerPool, MethodDiscoverServerPool, MethodSetPoolMemberIPList,
		MethodUpdateServerRoles, MethodConfigureVM, MethodRebootVM, MethodPauseVM, MethodUnpauseVM,
		MethodSaveVM, MethodRestoreVM, MethodConfigureVMHA, MethodDiscoverNetwork, MethodGetStatistics,
		MethodGetEvents, MethodSysReboot, MethodSysShutdown, MethodGetOperationProgress, MethodOpenConsole,
		MethodSetupMigrationTarget, MethodMigrateVM, MethodCleanupMigrationTarget,
		MethodHAConfigure, MethodHADisable, MethodHAStatus, MethodHAReadLeases, MethodHAReadVMLeases,
		MethodCreateTemplate, MethodGetTemplateConfig, MethodDeleteTemplate, MethodListTemplates,
		MethodCopyFile, MethodResizeVirtualDisk}
	seen := map[string]bool{}
	for _, n := range names {
		if _, ok := Signatures[n]; !ok {
			t.Errorf("method %s has no signature", n)
		}
		seen[n] = true
	}
	for n := range Signatures {
		if !seen[n] {
			t.Errorf("signature of %s names no declared method", n)
		}
	}
}

// TestPoolArgsInWireOrder: PoolParams.Args gives one value per parameter of
// create_server_pool and join_server_pool, each of the declared type.
func TestPoolArgsInWireOrder(t *testing.T) {
	args := PoolParams{Alias: "a", PoolUUID: "u", VIP: "10.0.0.1", Num: 3, Name: "n", Host: "h", Roles: "xen"}.Args()
	for _, m := range []string{MethodCreateServerPool, MethodJoinServerPool} {
		if _, err := Signatures[m].Check(args); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}

// TestSignatureCheckOptional: a trailing optional parameter may be left
// out, not more than the signature's parameters given, and a given one is
// checked for its type; the count's message names the range.
func TestSignatureCheckOptional(t *testing.T) {
	sig := Signature{{"since", TypeInt}, {"wait_ms", TypeInt | Optional}}
	tests := []struct {
		name    string
		args    []any
		bad     int
		wantErr string // "" when the arguments fit
	}{
		{"left out", []any{int64(3)}, -1, ""},
		{"given", []any{int64(3), int64(4000)}, -1, ""},
		{"none", []any{}, -1, "takes 1 to 2 parameters (since int, [wait_ms int]), got 0"},
		{"too many", []any{int64(3), int64(1), int64(2)}, -1, "takes 1 to 2 parameters"},
		{"optional of the wrong type", []any{int64(3), true}, 1, "parameter 2 (wait_ms) must be a int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCheck(t, sig, tt.args, tt.bad, tt.wantErr)
		})
	}
}

// TestOptionalParametersTrail: in every signature the optional parameters
// come last, so that a call that leaves them out keeps the others'
// positions.
func TestOptionalParametersTrail(t *testing.T) {
	for name, sig := range Signatures {
		for i, p := range sig[sig.Required():] {
			if !p.optional() {
				t.Errorf("%s: parameter %d (%s) is required after an optional one", name, sig.Required()+i+1, p.Name)
			}
		}
	}
}

// wantCheck checks sig.Check(args): no error and -1 when wantErr is "",
// else parameter bad refused with an error containing wantErr.
func wantCheck(t *testing.T, sig Signature, args []any, bad int, wantErr string) {
	t.Helper()
	got, err := sig.Check(args)
	if wantErr == "" {
		if err != nil || got != -1 {
			t.Fatalf("Check = %d, %v; want -1, nil", got, err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), wantErr) || got != bad {
		t.Fatalf("Check = %d, %v; want %d and an error containing %q", got, err, bad, wantErr)
	}
}
