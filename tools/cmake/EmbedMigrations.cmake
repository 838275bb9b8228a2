# Writes a .cc defining the MigrationSet for one schema from numbered SQL files.
# Inputs: OUT, SCHEMA, NAME, FILES (comma-separated, sorted).
string(REPLACE "," ";" FILES "${FILES}")
set(body "")
foreach(f IN LISTS FILES)
  get_filename_component(base "${f}" NAME_WE)
  string(REGEX MATCH "^([0-9]+)_(.*)$" _ "${base}")
  set(version "${CMAKE_MATCH_1}")
  set(label "${CMAKE_MATCH_2}")
  math(EXPR version "${version} + 0")
  file(READ "${f}" sql)
  string(APPEND body "    {${version}, \"${label}\", R\"__sql__(${sql})__sql__\"},\n")
endforeach()
file(WRITE "${OUT}.tmp"
"// Generated from ${SCHEMA} migrations; do not edit.
#include \"services/common/db/migrations.h\"

namespace orchestrator::db {

const MigrationSet& ${NAME}() {
  static const MigrationSet kSet{\"${SCHEMA}\", {
${body}  }};
  return kSet;
}

}  // namespace orchestrator::db
")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
