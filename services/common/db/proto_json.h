#pragma once

#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "services/common/db/pool.h"

namespace orchestrator::db {

// Stores that keep a protobuf message in a jsonb column (the source of truth
// for every field, readable in psql) write and read it with these.

inline std::string ToJsonColumn(const google::protobuf::Message& m) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out);
  return out;
}

// Unknown fields (rows written by a newer version) are ignored.
template <typename M>
absl::StatusOr<M> FromJsonColumn(absl::string_view json) {
  M m;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(std::string(json), &m, options).ok()) {
    return absl::DataLossError(absl::StrCat("unreadable ", M::descriptor()->name(), " row"));
  }
  return m;
}

// Column 0 of every row.
template <typename M>
absl::StatusOr<std::vector<M>> FromJsonRows(const Result& r) {
  std::vector<M> out;
  for (int i = 0; i < r.rows(); ++i) {
    auto m = FromJsonColumn<M>(r.Get(i, 0));
    if (!m.ok()) return m.status();
    out.push_back(std::move(*m));
  }
  return out;
}

}  // namespace orchestrator::db
