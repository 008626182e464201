def test_revised(str0):
    return str0.split()[::-1]
