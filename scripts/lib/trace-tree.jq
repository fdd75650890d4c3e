# A Jaeger /api/traces answer as one indented span tree per trace: start offset in the trace,
# duration, service and operation (scripts/jaeger.sh traces).
.data[] as $t
| ($t.spans | map(.startTime) | min) as $t0
| ($t.spans | map({key: .spanID, value: .}) | from_entries) as $byid
| ($t.spans | map(select(([.references[]? | select(.refType == "CHILD_OF") | .spanID] | map(select($byid[.] != null))) | length == 0))) as $roots
| def kids($id): [$t.spans[] | select(any(.references[]?; .refType == "CHILD_OF" and .spanID == $id))] | sort_by(.startTime);
  def line($s; $depth):
    "\(("+" + ((($s.startTime - $t0) / 1000) | tostring) + " ms") | .[0:12] | . + (" " * (12 - length)))"
    + "\(((($s.duration / 1000) | tostring) + " ms") | .[0:10] | . + (" " * (10 - length)))"
    + ("  " * $depth) + "\($t.processes[$s.processID].serviceName): \($s.operationName)";
  def tree($s; $depth): line($s; $depth), (kids($s.spanID)[] | tree(.; $depth + 1));
"trace \($t.traceID) (\($t.spans | length) spans)",
  ($roots | sort_by(.startTime)[] | tree(.; 1)),
  ""
