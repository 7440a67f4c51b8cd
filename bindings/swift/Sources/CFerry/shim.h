/* Pulls the public header into the CFerry module (the module map needs a path; the header lives on the include
 * path, not in this package). */
#include <ferry/ferry.h>
