# Writes a .cc defining `const std::string& <NAMESPACE>::<FUNCTION>()` that
# returns the text of FILE. Inputs: OUT, NAMESPACE, FUNCTION, FILE.
file(READ "${FILE}" text)
if(text MATCHES "\\)__text__\"")
  message(FATAL_ERROR "${FILE} holds the raw string's delimiter )__text__\"")
endif()
file(WRITE "${OUT}.tmp"
"// Generated from ${FILE}; do not edit.
#include <string>

namespace ${NAMESPACE} {

const std::string& ${FUNCTION}() {
  static const std::string* const kText = new std::string(R\"__text__(${text})__text__\");
  return *kText;
}

}  // namespace ${NAMESPACE}
")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
