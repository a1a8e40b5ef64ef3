// Test plugin `js-map`: uppercases the JSON field `user` (the polyglot
// benchmark's map; the same as tests/plugins/json-map in Rust).
import * as weir from "weir-sdk";

export default weir.map((ev) => {
  const doc = ev.json();
  if (typeof doc.user !== "string") throw new weir.WeirError("no string field `user`");
  doc.user = doc.user.toUpperCase();
  return ev.setJson(doc);
});
