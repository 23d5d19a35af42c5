"""Pure domain code: enums, tables of rules and the pydantic models shared by api/ and workflows/.

Nothing in this package performs I/O, reads a clock or draws random numbers, so workflows may
import it freely.
"""
