#include "CMSRPSupport.h"
