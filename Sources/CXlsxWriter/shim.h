#ifndef SYNCNODE_CXLSXWRITER_SHIM_H
#define SYNCNODE_CXLSXWRITER_SHIM_H
#include <xlsxwriter.h>
#endif
